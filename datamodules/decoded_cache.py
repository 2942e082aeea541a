"""On-disk cache of decoded samples: ``.npy`` arrays, memory-mapped when read lazily.

Decoding a micrograph (TIFF/PNG/JPEG decompression, bit-depth scaling, colour-mask lookup, resizing) is
repeated for every sample of every epoch in lazy mode. With ``data.cache_dir`` set, the first decode of
a sample writes its image and mask as ``.npy`` files; later reads map them (``np.load(mmap_mode="c")``),
so a random crop only touches the pages it needs. The key of a sample is a hash of

* the source's identity: both files' resolved paths, modification times and sizes (or the arguments of
  a generated sample), so an edited or replaced file is decoded anew;
* the DataModule's decoding settings (class map, scale, ...: every attribute except the loader and
  augmentation settings, which never change decoded pixels);
* the source code of the modules that decode (reader, mask decoders, resizing, the DataModule's own
  module), so an upgraded reader never serves arrays decoded by the old one.

An entry is written to a temporary name and renamed, so several DataLoader workers or DDP ranks can
fill the same cache at once and a killed run never leaves a half-written entry under a valid name. A
cache folder can be deleted at any time; nothing else is stored there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from datamodules.io import DataError
from datamodules.samples import Sample, Source

#: bump when the layout of a cache entry changes
CACHE_FORMAT = 1


#: DataModule attributes that never change a decoded sample, left out of the key: loader, augmentation
#: and storage settings (``SegmentationDataModule``), and Lightning's own
NOT_DECODING = {
    "batch_size", "eval_batch_size", "num_workers", "persistent_workers", "pin_memory", "crop_size",
    "train_repeats", "augment", "storage", "memory_budget", "cache_dir", "storage_plans", "test_set_names",
    "trainer", "prepare_data_per_node", "allow_zero_length_dataloader_with_multiple_devices",
}  # fmt: skip
#: modules whose code decides what a decoded sample is (the DataModule's own module is added)
DECODING_MODULES = (
    "datamodules.io",
    "datamodules.intensity",
    "datamodules.masks",
    "datamodules.transforms",
)


def decoding_fingerprint(datamodule: object) -> str:
    """What a DataModule's decoded samples depend on besides their files.

    Every attribute but :data:`NOT_DECODING` (the class map, the scale, a subclass's own settings:
    an attribute nobody listed counts, so a new decoding setting can never serve stale arrays) and the
    source code of the decoding modules.
    """
    cls = type(datamodule)
    settings = {k: v for k, v in vars(datamodule).items() if not k.startswith("_") and k not in NOT_DECODING}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for name in sorted({*DECODING_MODULES, cls.__module__}):
        path = getattr(sys.modules.get(name), "__file__", None)
        digest.update(name.encode())
        if path and Path(path).is_file():
            digest.update(Path(path).read_bytes())
    return f"{cls.__module__}.{cls.__qualname__}|{digest.hexdigest()}"


class DecodedCache:
    """A folder of decoded samples; ``token`` holds everything besides the source that decoding depends on."""

    def __init__(self, folder: str | Path, token: str) -> None:
        self.folder, self.token = Path(folder), f"{CACHE_FORMAT}|{token}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataError(
                f"{self.folder}: cannot create the decoded-sample cache ({err.strerror}); "
                "set data.cache_dir to a writable folder, or leave it unset"
            ) from err
        self.write_failed = False

    def paths(self, source: Source) -> tuple[Path, Path]:
        key = hashlib.sha256(f"{self.token}|{source.identity()}".encode()).hexdigest()[:32]
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", source.name)[:60]
        return self.folder / f"{stem}-{key}.image.npy", self.folder / f"{stem}-{key}.mask.npy"

    def read(self, source: Source, decode: Callable[[Source], Sample], in_memory: bool) -> Sample:
        """The cached arrays of ``source``, decoding (and storing) them first when they are not there."""
        image_path, mask_path = self.paths(source)
        try:
            mode = None if in_memory else "c"  # copy-on-write: writable arrays, pages read on demand
            return Sample(
                source.name, np.load(image_path, mmap_mode=mode), np.load(mask_path, mmap_mode=mode)
            )
        except (OSError, ValueError, EOFError):  # not cached yet, or an unreadable entry: decode again
            pass
        sample = decode(source)
        for path, array in ((mask_path, sample.mask), (image_path, sample.image)):
            temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
            try:
                with open(temporary, "wb") as f:
                    np.save(f, np.ascontiguousarray(array))
                os.replace(temporary, path)
            except OSError as err:  # a full or read-only disk costs speed, not the run
                temporary.unlink(missing_ok=True)
                if not self.write_failed:
                    warnings.warn(
                        f"{self.folder}: cannot write the decoded-sample cache ({err}); "
                        "decoding without it (free disk space or change data.cache_dir)",
                        stacklevel=2,
                    )
                self.write_failed = True
                break
        return sample
