"""Pretrained weights: one table of sources and one entry point, `load_weights(net, source)`.

A source targets an encoder *part* of the net: `cnn` (an smp encoder) or `swin` (a SwinEncoder). Nets
name their parts in `encoder_parts` (`{"cnn": attribute, "swin": attribute}`) and map foreign keys with
the `checkpoint_filter(state_dict, net, part)` defined in their own module. Sources:

- `imagenet`: every part of the net, smp's ImageNet encoder (`smp-hub/<encoder>.imagenet`) and timm's
  `swin_tiny_patch4_window7_224.ms_in1k`, read from the Hugging Face cache (downloaded when online);
- `micronet`, `imagenet-micronet`: NASA's MicroNet CNN encoders (part `cnn`), from NASA's bucket;
- `microlite`, `imagenet-microlite`: the CS-UNet authors' Swin-T classifiers trained on MicroLite from
  random init or from ImageNet (part `swin`; the file of the net's Swin depth, from the links of their
  README), Microsoft Swin training checkpoints. `$MICROSEG_MICROLITE` replaces `microlite` by a local
  checkpoint, e.g. of our own Swin-T classifier;
- `none`: nothing; a path: a file for the part it fits (pass `part=` or let the key count decide);
- a dict `{"cnn": source, "swin": source}` to choose per part (e.g. CS-UNet: imagenet-micronet + microlite).

Downloads go once into the torch hub cache with a sha256 record (`weight_files.fetch`).
Nets with `decoder_seeds` (Swin-Unet, CS-UNet, TransDeepLab with `seed_decoder`) also receive Swin
blocks in their decoder from a `swin` source; the report says which stage got what.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from lightning_modules.load_report import LoadReport, PartLoad, Seed
from lightning_modules.nets.swin import DEPTHS
from lightning_modules.weight_files import DRIVE, WeightsUnavailable, fetch, hf_file, read_state_dict

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
#: MicroNet's channel statistics (NASA `pretrained_microscopy_models.util.get_special_preprocessing_fn`)
MICRONET_STATS = ((0.4723, 0.4599, 0.4468), (0.1684, 0.1575, 0.1675))
NASA_BUCKET = "https://nasa-public-data.s3.amazonaws.com/microscopy_segmentation_models/"
SWIN_IMAGENET = "swin_tiny_patch4_window7_224.ms_in1k"

__all__ = ["SOURCES", "WeightsMismatch", "WeightsUnavailable", "load_weights", "read_state_dict"]


@dataclass(frozen=True)
class Source:
    """Where a named source's weights come from; `url` may hold `{encoder}`, `{version}` and `{file_id}`."""

    part: str  # "cnn", "swin" or "all"
    url: str
    version: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    sha256: dict[str, str] = field(default_factory=dict)  # file name -> sha256 (none published yet)
    files: dict[str, str] = field(default_factory=dict)  # Swin depth -> file id


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
    # Google Drive ids of the README of Kalrfou/SwinT-pretrained-microscopy-models (top-1 84.23 / 84.0 %)
    "microlite": Source(
        "swin",
        DRIVE + "{file_id}",
        "1",
        *IMAGENET_STATS,
        files={
            "original": "1SZsdAYgQXDUHRoxENoUICL_SxcToKzd0",
            "intermediate": "11iuqZUfZEDmKJ_2UimDRFZraqPoCDWMu",
        },
    ),
    # ImageNet -> MicroLite (top-1 84.63 / 84.45 %)
    "imagenet-microlite": Source(
        "swin",
        DRIVE + "{file_id}",
        "1",
        *IMAGENET_STATS,
        files={
            "original": "1ksqnjN1aiM133ASSg4PEswOnZtklg7Jb",
            "intermediate": "1uNRH0DjAQiRPRdIvEraZdLpS6P1kDQUw",
        },
    ),
}


class WeightsMismatch(WeightsUnavailable, ValueError):
    """Weights that do not fit the net (too few tensors, a part it lacks): the message says why."""


def micronet_url(encoder: str, source: str) -> str:
    """NASA's file for `encoder`: resnet50 micronet is v1.1, resnext101_32x8d micronet has its own name."""
    if source == "micronet" and encoder == "resnext101_32x8d":
        return NASA_BUCKET + "resnext101_pretrained_microscopynet_v1.0.pth.tar"
    version = "1.1" if (encoder, source) == ("resnet50", "micronet") else SOURCES[source].version
    return SOURCES[source].url.format(encoder=encoder, version=version)


def swin_depth_name(net: nn.Module) -> str:
    """`original` / `intermediate` for the net's Swin-T; HiFormer and TransDeepLab hold only 3 stages."""
    held = tuple(getattr(net, net.encoder_parts["swin"]).depths)
    name = next((k for k, v in DEPTHS.items() if v[: len(held)] == held), None)
    if name is None:
        raise WeightsMismatch(
            f"no published Swin-T has depths {list(held)} (only {dict(DEPTHS)}): pass a weights file of "
            "that depth or use weights: none"
        )
    return name


def published_swin(source: str, depth: str, local: str | Path | None = None) -> Path:
    """The authors' Swin-T checkpoint `source` of `depth` in the cache (downloaded or from `local`)."""
    entry = SOURCES[source]
    name = f"{source}_swin_t_{depth}.pth"
    url = entry.url.format(file_id=entry.files[depth])
    return fetch(url, name, entry.sha256.get(name), local, install=f"{source} --depth {depth}")


def _encoder_name(net: nn.Module) -> str:
    name = getattr(net, "encoder_name", None)
    if not name:
        raise WeightsMismatch(
            f"{type(net).__name__} has no `encoder_name`, so CNN weights cannot be chosen for it"
        )
    return name


def _resolve(net: nn.Module, source: str, part: str) -> tuple[dict, str]:
    """State dict + label of a named source for one part."""
    if source == "imagenet" and part == "cnn":
        from segmentation_models_pytorch.encoders import encoders

        settings = encoders[_encoder_name(net)]["pretrained_settings"]["imagenet"]
        return read_state_dict(
            hf_file(settings["repo_id"], settings["revision"])
        ), f"imagenet ({settings['repo_id']})"
    if source == "imagenet":
        return read_state_dict(hf_file("timm/" + SWIN_IMAGENET)), f"imagenet (timm/{SWIN_IMAGENET})"
    if source in ("micronet", "imagenet-micronet"):
        encoder = _encoder_name(net)
        url = micronet_url(encoder, source)
        sha256 = SOURCES[source].sha256.get(url.rsplit("/", 1)[-1])
        return read_state_dict(fetch(url, sha256=sha256, install=f"{source} --encoder {encoder}")), url
    if source == "microlite" and os.environ.get("MICROSEG_MICROLITE"):
        path = Path(os.environ["MICROSEG_MICROLITE"])
        return read_state_dict(path), f"microlite ($MICROSEG_MICROLITE={path})"
    if source in ("microlite", "imagenet-microlite"):
        path = published_swin(source, swin_depth_name(net))
        return read_state_dict(path), f"{source} ({path.name}, the CS-UNet authors' Swin-T)"
    return read_state_dict(source), str(source)


def _seeds(net: nn.Module, fits: dict, mapped: dict, target: dict) -> list[Seed]:
    """Per decoder stage of `net.decoder_seeds`: how many mirrored tensors fit and how many did not."""
    seeds = []
    for stage, source in getattr(net, "decoder_seeds", {}).items():
        keys = [k for k in target if k.startswith(stage + ".")]
        offered = [k for k in mapped if k.startswith(stage + ".")]
        loaded = sum(k in fits for k in offered)
        seeds.append(Seed(stage, source, loaded, len(keys), len(offered) - loaded))
    return seeds


def _load_part(net: nn.Module, state: dict, label: str, part: str, min_fraction: float) -> PartLoad:
    attr = net.encoder_parts[part]
    module = getattr(net, attr)
    mapped = importlib.import_module(type(net).__module__).checkpoint_filter(state, net, part)
    target = net.state_dict()
    fits = {k: v for k, v in mapped.items() if k in target and target[k].shape == v.shape}
    seeded = tuple(stage + "." for stage in getattr(net, "decoder_seeds", {}))
    part_keys = [k for k in target if k.startswith(attr + ".")]
    optional = {f"{attr}.{k}" for k in getattr(module, "optional_keys", set)()} - fits.keys()
    missing = [k for k in part_keys if k not in fits and k not in optional]
    unexpected = [
        k if k not in target else f"{k} {tuple(v.shape)} != {tuple(target[k].shape)}"
        for k, v in mapped.items()
        if k not in fits and not k.startswith(seeded)
    ]
    report = PartLoad(
        part=part,
        source=label,
        loaded=sum(k.startswith(attr + ".") for k in fits),
        expected=len(part_keys) - len(optional),
        missing=missing,
        unexpected=unexpected,
        extra=sorted(k for k in fits if not k.startswith((attr + ".", *seeded))),
        seeds=_seeds(net, fits, mapped, target) if part == "swin" else [],
    )
    print(report)
    if report.loaded < min_fraction * report.expected:
        raise WeightsMismatch(
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
    Decoder seeds are reported per stage and do not count towards `M`.
    """
    parts = getattr(net, "encoder_parts", None)
    if not parts:
        raise WeightsMismatch(
            f"{type(net).__name__} declares no `encoder_parts`: it has no pretrainable encoder"
        )
    if isinstance(source, dict):
        jobs = list(source.items())
    elif source is None or str(source) == "none":
        jobs = []
    elif str(source) in SOURCES:
        wanted = SOURCES[str(source)].part
        jobs = [(p, str(source)) for p in parts if wanted in ("all", p)]
        if not jobs:
            raise WeightsMismatch(
                f"weights {source!r} are for a `{wanted}` encoder; {type(net).__name__} has {list(parts)}"
            )
    else:
        jobs = [(part, source)]
    report = LoadReport()
    for job_part, job_source in jobs:
        if str(job_source) == "none":
            continue
        if job_part is not None and job_part not in parts:
            raise WeightsMismatch(
                f"{type(net).__name__} has no `{job_part}` encoder; its parts are {list(parts)}"
            )
        state, label = _resolve(net, str(job_source), job_part or next(iter(parts)))
        job_part = job_part or (next(iter(parts)) if len(parts) == 1 else _guess_part(net, state))
        report.parts.append(_load_part(net, state, label, job_part, min_fraction))
    return report
