"""Pretrained weights: one table of sources and one entry point, `load_weights(net, source)`.

A source targets an encoder *part* of the net: `cnn` (an smp encoder) or `swin` (a SwinEncoder). Nets
name their parts in `encoder_parts` (`{"cnn": attribute, "swin": attribute}`) and map foreign keys with
the `checkpoint_filter(state_dict, net, part)` defined in their own module. Sources:

- `imagenet`: every part of the net, smp's ImageNet encoder (`smp-hub/<encoder>.imagenet`) and timm's
  `swin_tiny_patch4_window7_224.ms_in1k`, read from the Hugging Face cache (downloaded when online);
- `micronet`, `imagenet-micronet`: NASA's MicroNet CNN encoders (part `cnn`), from NASA's bucket into the
  torch hub cache;
- `microlite`: our Swin-T classifier trained on MicroLite (part `swin`), a local `.ckpt` or state dict:
  `$MICROSEG_MICROLITE` or `<torch hub>/checkpoints/microlite_swin_t_<depth>.ckpt`;
- `none`: nothing; a path: a file for the part it fits (pass `part=` or let the key count decide);
- a dict `{"cnn": source, "swin": source}` to choose per part (e.g. CS-UNet: micronet + microlite).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn

from lightning_modules.nets.swin import DEPTHS

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
#: MicroNet's channel statistics (NASA `pretrained_microscopy_models.util.get_special_preprocessing_fn`)
MICRONET_STATS = ((0.4723, 0.4599, 0.4468), (0.1684, 0.1575, 0.1675))
NASA_BUCKET = "https://nasa-public-data.s3.amazonaws.com/microscopy_segmentation_models/"
SWIN_IMAGENET = "swin_tiny_patch4_window7_224.ms_in1k"


@dataclass(frozen=True)
class Source:
    """Where a named source's weights come from; `url` may hold `{encoder}`, `{version}` and `{depth}`."""

    part: str  # "cnn", "swin" or "all"
    url: str
    version: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    sha256: dict[str, str] = field(default_factory=dict)  # file name -> sha256 (none published yet)


SOURCES: dict[str, Source] = {
    "imagenet": Source(
        "all", "hf-hub:smp-hub/{encoder}.imagenet | hf-hub:timm/" + SWIN_IMAGENET, "1", *IMAGENET_STATS
    ),
    "micronet": Source(
        "cnn", NASA_BUCKET + "{encoder}_pretrained_microscopynet_v{version}.pth.tar", "1.0", *MICRONET_STATS
    ),
    "imagenet-micronet": Source(
        "cnn",
        NASA_BUCKET + "{encoder}_pretrained_imagenet-microscopynet_v{version}.pth.tar",
        "1.0",
        *MICRONET_STATS,
    ),
    "microlite": Source("swin", "file:microlite_swin_t_{depth}.ckpt", "1", *IMAGENET_STATS),
}


@dataclass
class PartLoad:
    """What one load put into one encoder part: `loaded` of `expected` tensors."""

    part: str
    source: str
    loaded: int
    expected: int
    missing: list[str]
    unexpected: list[str]
    extra: list[str]  # tensors loaded outside the part (e.g. a classifier's norm)

    def __str__(self) -> str:
        lines = [f"loaded {self.loaded}/{self.expected} tensors into `{self.part}` from {self.source}"]
        for label, names in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("also loaded", self.extra),
        ):
            if names:
                shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
                lines.append(f"  {label}: {shown}")
        return "\n".join(lines)


@dataclass
class LoadReport:
    """All parts a `load_weights` call touched."""

    parts: list[PartLoad] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return sum(p.loaded for p in self.parts)

    @property
    def expected(self) -> int:
        return sum(p.expected for p in self.parts)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.parts) or "no weights loaded (source none)"


def micronet_url(encoder: str, source: str) -> str:
    """NASA's file for `encoder`: resnet50 micronet is v1.1, resnext101_32x8d micronet has its own name."""
    if source == "micronet" and encoder == "resnext101_32x8d":
        return NASA_BUCKET + "resnext101_pretrained_microscopynet_v1.0.pth.tar"
    version = "1.1" if (encoder, source) == ("resnet50", "micronet") else SOURCES[source].version
    return SOURCES[source].url.format(encoder=encoder, version=version)


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true") for v in ("MICROSEG_OFFLINE", "HF_HUB_OFFLINE"))


def fetch(url: str, sha256: str | None = None) -> Path:
    """Download `url` once into `<torch hub>/checkpoints/` with a progress bar and a sha256 check."""
    dest = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    hint = (
        f"download {url} yourself and pass the file as the weights path, or copy it to {dest} "
        f"(or train from scratch with weights: none)"
    )
    if not dest.is_file():
        if _offline():
            raise WeightsUnavailable(
                f"weights {url} are not in the cache and downloads are off (offline): {hint}"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(dest), hash_prefix=sha256, progress=True)
        except (URLError, OSError) as err:
            raise WeightsUnavailable(f"cannot download weights {url} ({err}): {hint}") from err
        print(f"downloaded {url} -> {dest} (sha256 {hashlib.sha256(dest.read_bytes()).hexdigest()})")
    elif sha256 and hashlib.sha256(dest.read_bytes()).hexdigest() != sha256:
        raise RuntimeError(f"{dest} does not match the sha256 of {url}: delete it to download again")
    return dest


class WeightsUnavailable(RuntimeError):
    """Pretrained weights that cannot be had here (offline, not cached): the message says what to do."""


def _hf_file(repo_id: str, revision: str | None = None) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, filename="model.safetensors", revision=revision))
    except Exception as err:  # offline / not cached / no network all raise different types
        raise WeightsUnavailable(
            f"cannot get https://huggingface.co/{repo_id} ({type(err).__name__}): download it where there is "
            "network (the Hugging Face cache is used) or pass its model.safetensors as the weights path "
            "(or train from scratch with weights: none)"
        ) from err


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file and unwrap containers (`state_dict`, `model`; `net.`/`model.`/`module.`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} does not exist: pass an existing .ckpt/.pth/.safetensors"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # a Lightning .ckpt may pickle plain objects in its hyperparameters
        obj = torch.load(path, map_location="cpu", weights_only=False)
    while isinstance(obj, dict) and ("state_dict" in obj or "model" in obj):
        obj = obj.get("state_dict", obj.get("model"))
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"{path} holds no state dict (no tensors found): pass a checkpoint of network weights"
        )
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for prefix in ("net.", "model.", "module."):
        if any(k.startswith(prefix) for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    return state


def _encoder_name(net: nn.Module) -> str:
    name = getattr(net, "encoder_name", None)
    if not name:
        raise ValueError(
            f"{type(net).__name__} has no `encoder_name`, so CNN weights cannot be chosen for it"
        )
    return name


def _resolve(net: nn.Module, source: str, part: str) -> tuple[dict, str]:
    """State dict + label of a named source for one part."""
    if source == "imagenet" and part == "cnn":
        from segmentation_models_pytorch.encoders import encoders

        settings = encoders[_encoder_name(net)]["pretrained_settings"]["imagenet"]
        return read_state_dict(
            _hf_file(settings["repo_id"], settings["revision"])
        ), f"imagenet ({settings['repo_id']})"
    if source == "imagenet":
        return read_state_dict(_hf_file("timm/" + SWIN_IMAGENET)), f"imagenet (timm/{SWIN_IMAGENET})"
    if source in ("micronet", "imagenet-micronet"):
        url = micronet_url(_encoder_name(net), source)
        return read_state_dict(fetch(url, SOURCES[source].sha256.get(url.rsplit("/", 1)[-1]))), url
    if source == "microlite":
        swin = getattr(net, net.encoder_parts["swin"])
        # HiFormer and TransDeepLab hold only the first 3 stages: a depth is named by its prefix
        held = tuple(swin.depths)
        depth = next((k for k, v in DEPTHS.items() if v[: len(held)] == held), "custom")
        name = SOURCES["microlite"].url.removeprefix("file:").format(depth=depth)
        path = Path(os.environ.get("MICROSEG_MICROLITE") or Path(torch.hub.get_dir()) / "checkpoints" / name)
        if not path.is_file():
            raise FileNotFoundError(
                f"microlite weights not found at {path}: train the Swin-T classifier on MicroLite "
                "(`python -m experiments fit --config microlite.yaml`) and pass its .ckpt as the weights path, "
                "or set MICROSEG_MICROLITE to it"
            )
        return read_state_dict(path), f"microlite ({path})"
    return read_state_dict(source), str(source)


def _load_part(net: nn.Module, state: dict, label: str, part: str, min_fraction: float) -> PartLoad:
    attr = net.encoder_parts[part]
    module = getattr(net, attr)
    mapped = importlib.import_module(type(net).__module__).checkpoint_filter(state, net, part)
    target = net.state_dict()
    fits = {k: v for k, v in mapped.items() if k in target and target[k].shape == v.shape}
    part_keys = [k for k in target if k.startswith(attr + ".")]
    optional = {f"{attr}.{k}" for k in getattr(module, "optional_keys", set)()} - fits.keys()
    missing = [k for k in part_keys if k not in fits and k not in optional]
    unexpected = [
        k if k not in target else f"{k} {tuple(v.shape)} != {tuple(target[k].shape)}"
        for k, v in mapped.items()
        if k not in fits
    ]
    report = PartLoad(
        part=part,
        source=label,
        loaded=sum(k.startswith(attr + ".") for k in fits),
        expected=len(part_keys) - len(optional),
        missing=missing,
        unexpected=unexpected,
        extra=sorted(k for k in fits if not k.startswith(attr + ".")),
    )
    print(report)
    if report.loaded < min_fraction * report.expected:
        raise ValueError(
            f"only {report.loaded}/{report.expected} tensors of `{part}` load from {label} "
            f"(< {min_fraction:.0%}): wrong architecture or encoder for these weights? "
            "Lower min_fraction in the config only if this is intended."
        )
    net.load_state_dict(fits, strict=False)
    return report


def _guess_part(net: nn.Module, state: dict) -> str:
    """The part whose filter places the most tensors of `state` (for a plain path on a two-encoder net)."""
    target = net.state_dict()
    module = importlib.import_module(type(net).__module__)

    def fitting(part: str) -> int:
        mapped = module.checkpoint_filter(state, net, part)
        return sum(k in target and target[k].shape == v.shape for k, v in mapped.items())

    return max(net.encoder_parts, key=fitting)


def load_weights(
    net: nn.Module, source: str | Path | dict | None, min_fraction: float = 0.95, part: str | None = None
) -> LoadReport:
    """Load `source` into the encoder part(s) of `net`, print `loaded N/M`, raise below `min_fraction`.

    `M` counts the part's tensors minus those no plain checkpoint of that family has (ResMLP's `fc3`,
    unless the source provides them); tensors of the source that do not fit are listed as unexpected.
    """
    parts = getattr(net, "encoder_parts", None)
    if not parts:
        raise ValueError(f"{type(net).__name__} declares no `encoder_parts`: it has no pretrainable encoder")
    if isinstance(source, dict):
        jobs = list(source.items())
    elif source is None or str(source) == "none":
        jobs = []
    elif str(source) in SOURCES:
        wanted = SOURCES[str(source)].part
        jobs = [(p, str(source)) for p in parts if wanted in ("all", p)]
        if not jobs:
            raise ValueError(
                f"weights {source!r} are for a `{wanted}` encoder; {type(net).__name__} has {list(parts)}"
            )
    else:
        jobs = [(part, source)]
    report = LoadReport()
    for job_part, job_source in jobs:
        if str(job_source) == "none":
            continue
        if job_part is not None and job_part not in parts:
            raise ValueError(f"{type(net).__name__} has no `{job_part}` encoder; its parts are {list(parts)}")
        state, label = _resolve(net, str(job_source), job_part or next(iter(parts)))
        job_part = job_part or (next(iter(parts)) if len(parts) == 1 else _guess_part(net, state))
        report.parts.append(_load_part(net, state, label, job_part, min_fraction))
    return report
