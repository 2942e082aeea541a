"""Where a split's samples live: decoded once into memory, or decoded per sample when the set is too big.

A DataModule's ``load_split`` lists *sources*: a :class:`FilePair` (image + mask files), a
:class:`Generated` sample (synthetic micrographs) or an already decoded :class:`Sample`. Each source
knows its size and recorded pixel size without decoding (file headers) and decodes itself on demand. :func:`plan_storage`
adds the headers up (:data:`BYTES_PER_PIXEL` per pixel, times ``scale²``) and keeps the split in memory
when it fits the memory budget: the benchmark sets are a few MB, and an epoch then costs only
augmentation. A bigger split is read lazily (:class:`LazySamples`): every access decodes one sample, so
memory stays flat however many micrographs there are, and under DDP each rank decodes only the samples
its sampler gives it instead of holding a copy of the whole split. :class:`DecodedCache` optionally keeps
the decoded arrays on disk, so later epochs (and runs) skip decoding.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

import numpy as np
from tqdm.auto import tqdm

from datamodules.intensity import DEFAULT_RULE
from datamodules.io import check_same_size, read_image, read_mask, read_size
from datamodules.pixel_size import file_calibration
from datamodules.transforms import rescale

if TYPE_CHECKING:
    from datamodules.decoded_cache import DecodedCache

Storage = Literal["auto", "memory", "lazy"]
#: decoded bytes per pixel: the uint8 RGB image and the uint8 class mask
BYTES_PER_PIXEL = 4
#: the default budget is this share of the machine's memory, split among the processes of one node
DEFAULT_BUDGET_SHARE = 0.25
#: where cgroup v2 and v1 state a memory limit ("max" or a huge number when there is none)
CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


@dataclass(frozen=True)
class Sample:
    """One decoded pair: ``image`` uint8 (H, W, 3), ``mask`` uint8 (H, W) class indices."""

    name: str
    image: np.ndarray
    mask: np.ndarray

    def size(self) -> tuple[int, int]:
        return self.mask.shape[0], self.mask.shape[1]

    def load(self) -> Sample:
        return self

    def identity(self) -> str | None:
        """Already in memory: never written to the disk cache."""
        return None

    def recorded_pixel_nm(self) -> float | None:
        """Made in memory: no file records its pixel size."""
        return None


@dataclass(frozen=True)
class FilePair:
    """An image file and its mask file; ``decode(raw mask, mask path)`` gives the class indices."""

    name: str
    image_path: Path
    mask_path: Path
    decode: Callable[[np.ndarray, Path], np.ndarray]
    color: bool = False
    intensity: str = DEFAULT_RULE

    def size(self) -> tuple[int, int]:
        """(H, W) from both headers; a mask of another size fails here, before any decoding."""
        image, mask = read_size(self.image_path), read_size(self.mask_path)
        check_same_size(image, mask, self.image_path, self.mask_path)
        return image

    def load(self) -> Sample:
        image = read_image(self.image_path, self.intensity)
        mask = self.decode(read_mask(self.mask_path, color=self.color), self.mask_path)
        check_same_size(image.shape[:2], mask.shape[:2], self.image_path, self.mask_path)
        return Sample(self.name, image, mask)

    def identity(self) -> str:
        """Both files by resolved path, modification time and size: an edited file is decoded anew."""
        parts = []
        for path in (self.image_path, self.mask_path):
            stat = path.stat()
            parts.append(f"{path.resolve()}:{stat.st_mtime_ns}:{stat.st_size}")
        return "|".join(parts)

    def recorded_pixel_nm(self) -> float | None:
        """The pixel side (nm) the image file's metadata records (headers only), or None."""
        calibration = file_calibration(self.image_path)
        return calibration.size.nm if calibration else None


@dataclass(frozen=True)
class Generated:
    """A sample computed by ``make(*args)`` → (image, mask), e.g. a seeded synthetic micrograph."""

    name: str
    make: Callable[..., tuple[np.ndarray, np.ndarray]]
    args: tuple
    shape: tuple[int, int]

    def size(self) -> tuple[int, int]:
        return self.shape

    def load(self) -> Sample:
        image, mask = self.make(*self.args)
        return Sample(self.name, image, mask)

    def identity(self) -> str:
        return f"{self.make.__module__}.{self.make.__qualname__}{self.args!r}"

    def recorded_pixel_nm(self) -> float | None:
        return None


Source = Sample | FilePair | Generated


@dataclass(frozen=True)
class SampleReader:
    """Decodes a source and resizes it by ``scale``, through the disk cache when there is one."""

    scale: float = 1.0
    cache: DecodedCache | None = None

    def __call__(self, source: Source, in_memory: bool) -> Sample:
        if self.cache is not None and source.identity() is not None:
            return self.cache.read(source, self._decode, in_memory)
        return self._decode(source)

    def _decode(self, source: Source) -> Sample:
        sample = source.load()
        image, mask = rescale(sample.image, sample.mask, self.scale)
        return Sample(sample.name, image, mask)


class LazySamples(Sequence[Sample]):
    """A split that decodes a sample each time it is indexed and keeps nothing in memory."""

    def __init__(self, sources: Sequence[Source], reader: SampleReader) -> None:
        self.sources, self.reader = list(sources), reader

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def __len__(self) -> int:
        return len(self.sources)

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...
    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.reader(self.sources[index], in_memory=False)


def sample_sizes(samples: Sequence[Sample]) -> list[tuple[int, int]]:
    """(H, W) of every sample after rescaling; a lazily read split answers from file headers, undecoded."""
    if isinstance(samples, LazySamples):
        scale = samples.reader.scale
        return [
            (max(1, round(h * scale)), max(1, round(w * scale)))  # as transforms.rescale sizes them
            for h, w in (source.size() for source in samples.sources)
        ]
    return [sample.mask.shape[:2] for sample in samples]


@dataclass(frozen=True)
class StoragePlan:
    """How a split is held, its estimated decoded size and the reason, as the log says it."""

    mode: Literal["memory", "lazy"]
    decoded_bytes: int
    reason: str


def gib(n: float) -> str:
    """Bytes for the log: GiB, or MiB below one GiB."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def plan_storage(
    sources: Sequence[Source], scale: float, storage: Storage, budget: int, budget_origin: str, label: str
) -> StoragePlan:
    """Memory or lazy for one split: the decoded size estimated from headers, against ``budget`` bytes.

    Reading every header also checks that each mask has its image's size before anything is decoded.
    """
    pixels = 0
    for source in tqdm(sources, desc=f"{label}: reading headers", unit="file", delay=2, leave=False):
        height, width = source.size()
        pixels += max(1, round(height * scale)) * max(1, round(width * scale))
    decoded = pixels * BYTES_PER_PIXEL
    size = f"{len(sources)} images, {gib(decoded)} decoded"
    if storage == "memory":
        return StoragePlan("memory", decoded, f"{size}; held in memory (storage: memory)")
    if storage == "lazy":
        return StoragePlan("lazy", decoded, f"{size}; decoded per sample (storage: lazy)")
    if decoded <= budget:
        return StoragePlan("memory", decoded, f"{size} within the budget {budget_origin}; held in memory")
    return StoragePlan(
        "lazy", decoded, f"{size} > the budget {budget_origin}; decoded per sample (lazy reading)"
    )


def memory_limit() -> int | None:
    """Bytes this process may use: the machine's memory, or a smaller cgroup limit (SLURM ``--mem``, containers)."""
    limits = []
    with contextlib.suppress(AttributeError, ValueError, OSError):  # no sysconf on Windows
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    for path in CGROUP_LIMITS:
        try:
            limits.append(int(Path(path).read_text().strip()))
        except (OSError, ValueError):  # absent, or "max" (no limit)
            continue
    return min(limits) if limits else None


def memory_budget(gib_given: float | None, processes: int) -> tuple[int, str]:
    """(bytes, how they were chosen) of decoded samples one process may hold.

    By default a quarter of the memory limit, shared by the node's processes (each DDP rank holds its own copy).
    """
    if gib_given is not None:
        budget = int(gib_given * 2**30)
        return budget, f"{gib(budget)} (data.memory_budget)"
    limit = memory_limit()
    if limit is None:
        limit, origin = 16 * 2**30, "of 16 GiB assumed (memory size unknown)"
    else:
        origin = f"of {gib(limit)} memory"
    budget = int(limit * DEFAULT_BUDGET_SHARE / max(1, processes))
    per = f" / {processes} processes" if processes > 1 else ""
    return budget, f"{gib(budget)} (a quarter {origin}{per}; data.memory_budget to change)"


def read_in_memory(sources: Sequence[Source], reader: SampleReader, label: str) -> list[Sample]:
    """Every sample decoded now (a progress bar when it takes a while)."""
    return [
        reader(s, in_memory=True)
        for s in tqdm(sources, desc=f"{label}: decoding", unit="image", delay=2, leave=False)
    ]
