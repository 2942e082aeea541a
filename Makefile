# microseg: every target sets itself up (creates .venv, installs pinned torch, then the project).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED ?= ../shared
DATA ?= data
RUNS ?= outputs

.DEFAULT_GOAL := help
.PHONY: help install xvfb demo test test-busy test-fast test-gpu lint format data bench measurements-doc reproduce-mini clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project (idempotent)

demo: $(STAMP) ## train a real segmenter on Super1 (or synthetic data) and write outputs/demo/
	$(BIN)/python -m experiments demo

test: $(STAMP) xvfb ## the whole suite CI runs (all but GPU tests)
	HF_HUB_OFFLINE=1 WANDB_MODE=offline $(BIN)/python -m pytest -m "not gpu" -n 2 --dist loadgroup

xvfb: ## an invisible X server for the napari widget tests (Debian's xvfb, installed once if missing)
	@command -v Xvfb >/dev/null || { echo "installing Xvfb: napari's widget tests draw its OpenGL canvas on an invisible X server"; \
	  apt-get update -q && apt-get install -y -q xvfb || echo "could not install xvfb (not root?): the napari tests will say so"; }

test-busy: $(STAMP) ## `make test` beside two busy-looping processes: no test may depend on machine speed
	@bash -c 'yes > /dev/null & a=$$!; yes > /dev/null & b=$$!; trap "kill $$a $$b" EXIT; $(MAKE) test'

test-fast: $(STAMP) ## fast unit tests only (no real data, no training)
	HF_HUB_OFFLINE=1 WANDB_MODE=offline $(BIN)/python -m pytest -m "not slow and not real_data and not gpu" -n 2

test-gpu: $(STAMP) ## the GPU tests (fast path vs fp32 IoU on Super1); needs CUDA and ../shared
	HF_HUB_OFFLINE=1 WANDB_MODE=offline MICROSEG_SHARED=$(SHARED) $(BIN)/python -m pytest -m gpu -s

lint: $(STAMP) ## ruff check + format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP) ## ruff fix + format
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

data: $(STAMP) ## unpack the NASA benchmark from ../shared into data/
	$(BIN)/python -m experiments data download --from $(SHARED)/data/nasa-benchmark.tar.gz --root $(DATA)

bench: $(STAMP) ## train-step throughput and data-loading benchmark
	$(BIN)/python -m experiments bench

measurements-doc: $(STAMP) ## regenerate docs/measurements.md: measure's error on analytic shapes + Super1 (needs `make data`)
	MICROSEG_DATA=$(DATA) $(BIN)/python -m experiments measure-accuracy

table%: $(STAMP) ## table4 … table8: the paper's tables from our runs
	$(BIN)/python -m experiments table $* --runs $(RUNS)

reproduce-mini: $(STAMP) ## miniature reproduction of the paper's claim on CPU
	$(BIN)/python -m experiments reproduce-mini

clean: ## remove outputs and caches (keeps .venv and data/)
	rm -rf outputs wandb lightning_logs .pytest_cache
