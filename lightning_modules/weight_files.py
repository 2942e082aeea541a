"""Getting a weights file and reading it safely: download once into the torch hub cache, sha256 record.

`fetch(url, name)` is the one way a named source reaches the disk. The file lands in
`<torch hub>/checkpoints/<name>` with `<name>.sha256` beside it, written the first time the file is seen
(downloaded, copied in with `local=`, or put there by hand) and checked on every later use, so a file
that changes afterwards is caught. Where a checksum is published it is checked instead. Google Drive
files (the CS-UNet authors' Swin-T checkpoints) go through `gdown`, which handles Drive's confirmation
page; other URLs through `torch.hub.download_url_to_file`.

`read_state_dict(path)` reads tensors and plain containers only. Files are read by torch's
`weights_only` unpickler; a class it does not know (a training checkpoint's pickled yacs config, a
Lightning hyperparameter object, ...) is replaced by an empty `OrderedDict` that receives the file's
data, so no code named in the file runs and no such library needs to be installed. Load only
checkpoints from sources you trust all the same: a tensor's values can be anything.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from collections import OrderedDict
from pathlib import Path

import torch

DRIVE = "https://drive.google.com/uc?id="


class WeightsUnavailable(RuntimeError):
    """Pretrained weights that cannot be had or used here: the message names the file or URL and the fix."""


def cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true") for v in ("MICROSEG_OFFLINE", "HF_HUB_OFFLINE"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, dest: Path) -> None:
    """`url` -> `dest` (through a temporary file, so an interrupted download leaves nothing behind)."""
    part = dest.with_name(dest.name + ".part")
    try:
        if url.startswith(DRIVE):
            import gdown

            got = gdown.download(id=url.removeprefix(DRIVE), output=str(part), quiet=False)
            if got is None or not part.is_file():
                raise OSError("Google Drive gave no file")
        else:
            torch.hub.download_url_to_file(url, str(part), progress=True)
    except Exception:
        part.unlink(missing_ok=True)
        raise
    part.replace(dest)


def fetch(
    url: str,
    name: str | None = None,
    sha256: str | None = None,
    local: str | Path | None = None,
    install: str = "SOURCE ...",
) -> Path:
    """The cached file of `url` (downloaded, or copied from `local`, on first use), its sha256 verified.

    `sha256`: a published checksum; without one the digest recorded beside the file on first use is the
    reference. `install`: the `weights fetch` arguments that name this file, for the offline hint.
    Raises `WeightsUnavailable` offline, on a failed download and on a checksum mismatch.
    """
    dest = cache_dir() / (name or url.rsplit("/", 1)[-1])
    record = dest.with_name(dest.name + ".sha256")
    hint = (
        f"download {url} where there is network, then pass the file as the weights path, or install it "
        f"into the cache with `python -m experiments weights fetch {install} --from FILE` (or train from "
        "scratch with weights: none)"
    )
    stored = not dest.is_file()
    if stored:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if local is not None:
            if not Path(local).is_file():
                raise WeightsUnavailable(f"--from {local}: no such file; pass the downloaded weights file")
            part = dest.with_name(dest.name + ".part")
            shutil.copyfile(local, part)
            part.replace(dest)
        elif offline():
            raise WeightsUnavailable(
                f"weights {url} are not in the cache ({dest}) and downloads are off: {hint}"
            )
        else:
            try:
                _download(url, dest)
            except Exception as err:  # urllib, requests and gdown each raise their own types
                raise WeightsUnavailable(f"cannot download weights {url} ({err}): {hint}") from err
    actual = sha256_of(dest)
    expected = sha256 or (record.read_text().split()[0] if record.is_file() else None)
    if local is not None and not stored and sha256_of(Path(local)) != actual:
        raise WeightsUnavailable(
            f"{dest} is already in the cache with other contents: delete it and {record.name} to install {local}"
        )
    if expected is None:
        record.write_text(f"{actual}  {dest.name}\n")
        print(f"weights {local or url} -> {dest} (sha256 {actual}, recorded in {record.name})")
    elif actual != expected:
        if stored:
            dest.unlink()
        source = "published" if sha256 else f"recorded in {record} when the file was first stored"
        raise WeightsUnavailable(
            f"{dest} has sha256 {actual}, not the {expected} {source}: the file changed or is incomplete; "
            f"delete it and {record.name} to download it again"
        )
    return dest


def hf_file(repo_id: str, revision: str | None = None) -> Path:
    """`model.safetensors` of a Hugging Face repo, from its cache (downloaded when online)."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, filename="model.safetensors", revision=revision))
    except Exception as err:  # offline / not cached / no network all raise different types
        raise WeightsUnavailable(
            f"cannot get https://huggingface.co/{repo_id} ({type(err).__name__}): download it where there is "
            "network (the Hugging Face cache is used) or pass its model.safetensors as the weights path "
            "(or train from scratch with weights: none)"
        ) from err


class _Unpickled:
    """Stand-in for a class a checkpoint names but that is not read: becomes an empty OrderedDict.

    torch's `weights_only` unpickler fills an OrderedDict with the items and attributes the file
    gives, and calling this stand-in (where the file would call the class) runs nothing of the file.
    """

    def __new__(cls, *args, **kwargs) -> OrderedDict:
        return OrderedDict()


def _not_a_checkpoint(path: Path, err: Exception) -> WeightsUnavailable:
    return WeightsUnavailable(
        f"{path} is not a PyTorch checkpoint ({type(err).__name__}: {err}): pass a .ckpt/.pth/.pt "
        "(torch.save of torch >= 1.6) or .safetensors file of network weights"
    )


def _load_plain(path: Path) -> object:
    """`torch.load(weights_only=True)`, with every unknown class of the file replaced by `_Unpickled`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # names classes the weights_only unpickler does not know, or is no pickle at all
    except Exception as err:  # torch raises KeyError, EOFError, ... on files of other kinds
        raise _not_a_checkpoint(path, err) from err
    try:
        unknown = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception as err:  # not the zip format of torch.save
        raise _not_a_checkpoint(path, err) from err
    try:
        with torch.serialization.safe_globals([(_Unpickled, name) for name in unknown]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as err:
        reason = next((line for line in str(err).splitlines() if "GLOBAL" in line or "Can only" in line), err)
        raise WeightsUnavailable(
            f"{path} cannot be read as plain tensors and containers ({reason}): re-save its weights "
            "with torch.save(model.state_dict(), FILE) where it was made, and pass that file"
        ) from err


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file and unwrap containers (`state_dict`, `model`; `net.`/`model.`/`module.`)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailable(
            f"weights file {path} does not exist: pass an existing .ckpt/.pth/.safetensors"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    obj = _load_plain(path)
    while isinstance(obj, dict) and ("state_dict" in obj or "model" in obj):
        obj = obj.get("state_dict", obj.get("model"))
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsUnavailable(
            f"{path} holds no state dict (no tensors found): pass a checkpoint of network weights"
        )
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for prefix in ("net.", "model.", "module."):
        if any(k.startswith(prefix) for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    return state
