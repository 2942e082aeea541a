"""Get NASA's segmentation benchmark into ``<root>/<Set>/...`` and verify it by per-split file counts.

Sources: the public GitHub archive of ``nasa/pretrained-microscopy-models`` (default), any URL, a local
tarball (e.g. ``../shared/data/nasa-benchmark.tar.gz``) or a folder already holding the sets. Only the
requested sets are extracted; a set already present with the expected counts is left alone, so running
it again is free and needs no network. Each set is staged in a temporary folder and moved into place
only once it verifies, so an interrupted run never leaves a half set behind.
"""

from __future__ import annotations

import copy
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from datamodules.io import DataError, list_images

DEFAULT_URL = "https://github.com/nasa/pretrained-microscopy-models/archive/refs/heads/main.tar.gz"
ARCHIVE_FOLDER = "benchmark_segmentation_data"
TIMEOUT_S = 15.0
SETS = ("Super1", "Super2", "Super3", "Super4", "EBC1", "EBC2", "EBC3")

#: images per split in the public source (masks alike)
EXPECTED: dict[str, dict[str, int]] = {
    "Super1": {"train": 10, "val": 4, "test": 4},
    "Super2": {"train": 4, "val": 4, "test": 4, "different_test": 5},
    "Super3": {"train": 1, "val": 4, "test": 4, "different_test": 5},
    "Super4": {"train": 4, "val": 4, "test": 5},
    "EBC1": {"train": 18, "val": 3, "test": 3},
    "EBC2": {"train": 4, "val": 3, "test": 3},
    "EBC3": {"train": 15, "val": 3, "test": 6},
}
#: images some copies lack because of a file-size limit (their masks are present); accepted, with a warning
#: from the loader when it pairs the files
MAY_LACK = {("EBC1", "train"): 2, ("EBC3", "train"): 2}


def set_name(name: str) -> str:
    """Canonical set folder name for ``name`` in any case (``super1`` → ``Super1``)."""
    for canonical in SETS:
        if canonical.lower() == name.lower():
            return canonical
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(s.lower() for s in SETS)} or all")


def count_files(set_dir: Path) -> dict[str, tuple[int, int]]:
    """``split -> (images, masks)`` for the splits present in ``set_dir``."""
    counts = {}
    for split in EXPECTED[set_dir.name]:
        images, masks = set_dir / split, set_dir / f"{split}_annot"
        counts[split] = (
            len(list_images(images)) if images.is_dir() else 0,
            len(list_images(masks)) if masks.is_dir() else 0,
        )
    return counts


def verify(set_dir: Path) -> list[str]:
    """Problems with the per-split counts of a set folder (empty list: it is complete)."""
    if not set_dir.is_dir():
        return [f"{set_dir} is missing"]
    problems = []
    for split, (images, masks) in count_files(set_dir).items():
        want = EXPECTED[set_dir.name][split]
        allowed = {want, want - MAY_LACK.get((set_dir.name, split), 0)}
        if masks != want or images not in allowed:
            problems.append(f"{set_dir / split}: {images} images / {masks} masks, expected {want} / {want}")
    return problems


def download(url: str, dest: Path, timeout: float = TIMEOUT_S) -> Path:
    """Fetch ``url`` to ``dest`` with a progress bar; offline, fail fast with a message naming --from.

    The file appears under its name only once complete, so a cached archive is always whole.
    """
    tmp = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}") as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"could not download {url} ({err}); without network pass a local copy with "
            "--from FILE_OR_DIR (e.g. --from ../shared/data/nasa-benchmark.tar.gz)"
        ) from err
    tmp.replace(dest)
    return dest


def _set_relative(member_name: str, wanted: set[str]) -> str | None:
    """``Set/split/file`` for an archive member inside a wanted set folder, else None."""
    parts = PurePosixPath(member_name).parts
    for i, part in enumerate(parts):
        if part in wanted and (i == 0 or parts[i - 1] == ARCHIVE_FOLDER):
            return "/".join(parts[i:])
    return None


def _stage_from_tar(archive: Path, wanted: set[str], staging: Path) -> None:
    """Extract the files of the wanted sets into ``staging/<Set>/...`` (safe ``data`` filter).

    Archives may store repeated files as hard links to a member in another set, so a link is written
    from its target's bytes (copied from disk when that target was already extracted).
    """
    staged: dict[str, Path] = {}
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                relative = _set_relative(member.name, wanted) if member.isfile() or member.islnk() else None
                if not relative:
                    continue
                renamed = copy.copy(member)
                renamed.name, renamed.type, renamed.linkname = relative, tarfile.REGTYPE, ""
                tarfile.data_filter(renamed, str(staging))  # raises on absolute paths, "..", odd modes
                target = staging / relative
                if member.isfile():
                    tar.extract(renamed, staging, filter="data")
                elif member.linkname in staged:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(staged[member.linkname], target)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
                staged[member.name] = target
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(f"{archive}: not a readable tar archive ({err}); download it again") from err


def _find_sets_dir(directory: Path) -> Path:
    """The folder that holds the set folders: ``directory`` itself or its ``benchmark_segmentation_data``."""
    for candidate in (directory, directory / ARCHIVE_FOLDER):
        if any((candidate / s).is_dir() for s in SETS):
            return candidate
    raise DataError(
        f"{directory}: holds no {'/'.join(SETS)} folder (nor {ARCHIVE_FOLDER}/); point --from at them"
    )


def fetch(names: list[str], root: str | Path, source: str | None = None) -> dict[str, str]:
    """Make ``root/<Set>`` complete for each set in ``names``; returns ``set -> what was done``."""
    root = Path(root)
    wanted = [set_name(n) for n in names]
    status = {s: "present" for s in wanted if not verify(root / s)}
    todo = {s for s in wanted if s not in status}
    if not todo:
        return status
    staging = root / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        source = source or DEFAULT_URL
        if "://" in source:
            cached = root / ".cache" / (PurePosixPath(source).name or "archive.tar.gz")
            archive = cached if cached.is_file() else download(source, cached)
            _stage_from_tar(archive, todo, staging)
        elif Path(source).is_dir():
            sets_dir = _find_sets_dir(Path(source))
            for s in todo:
                if (sets_dir / s).is_dir():
                    shutil.copytree(sets_dir / s, staging / s)
        elif Path(source).is_file():
            _stage_from_tar(Path(source), todo, staging)
        else:
            raise DataError(f"{source}: no such file or folder; --from takes a tarball, a folder or a URL")
        for s in sorted(todo):
            if not (staging / s).is_dir():
                raise DataError(f"{source}: holds no {s} folder; use a copy of the full benchmark")
            problems = verify(staging / s)
            if problems:
                raise DataError(
                    f"{source}: set {s} is incomplete: {'; '.join(problems)}; use a complete copy"
                )
            shutil.rmtree(root / s, ignore_errors=True)
            (staging / s).replace(root / s)
            status[s] = "installed"
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return status
