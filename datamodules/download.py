"""Get NASA's segmentation benchmark into ``<root>/<Set>/...`` and verify every file of it.

Sources: the public GitHub archive of ``nasa/pretrained-microscopy-models`` (default; ``$MICROSEG_NASA_URL``
overrides it), any URL, a local tarball (e.g. ``../shared/data/nasa-benchmark.tar.gz``) or a folder
already holding the sets. Only the requested sets are extracted. A set is complete when its per-split
counts are right and every file is intact: NASA's files must match the repository's own content hash
(``nasa_benchmark.tsv``, the git blob ids of the commit the download is pinned to), any other file
must decode. A complete set is left alone, so running it again is free and needs no network; a damaged
or partial one is repaired file by file (files that are not NASA's are never touched), and ``force``
re-installs every file. Each set is staged in a temporary folder first, so an interrupted run never
leaves a half-written file behind.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from tqdm import tqdm

from datamodules.io import DataError, list_images, read_array

#: the commit whose tree ``nasa_benchmark.tsv`` lists: a pinned archive always has the same files
COMMIT = "f50b5689a71cf6f86016fb4a5c5a2bb31e0397f3"
DEFAULT_URL = f"https://github.com/nasa/pretrained-microscopy-models/archive/{COMMIT}.tar.gz"
ARCHIVE_FOLDER = "benchmark_segmentation_data"
TIMEOUT_S = 10.0  # connecting and every read: offline, fail in seconds rather than hang
SETS = ("Super1", "Super2", "Super3", "Super4", "EBC1", "EBC2", "EBC3")
SPLITS = ("train", "val", "test", "different_test")


def _manifest() -> dict[str, str]:
    """``Set/split/file -> git blob id`` of every file in NASA's benchmark."""
    lines = Path(__file__).with_name("nasa_benchmark.tsv").read_text().splitlines()
    return dict(reversed(line.split("\t")) for line in lines if line and not line.startswith("#"))


MANIFEST = _manifest()
#: images per split in the public source (masks alike)
EXPECTED: dict[str, dict[str, int]] = {
    name: {
        split: n for split in SPLITS if (n := sum(path.startswith(f"{name}/{split}/") for path in MANIFEST))
    }
    for name in SETS
}
#: images some copies lack (a file-size limit; their masks are present): accepted, the loader warns
MAY_LACK = {("EBC1", "train"): 2, ("EBC3", "train"): 2}


def source_url() -> str:
    """The public source, or ``$MICROSEG_NASA_URL`` (a mirror, or a local server in tests)."""
    return os.environ.get("MICROSEG_NASA_URL") or DEFAULT_URL


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


def set_files(set_dir: Path) -> list[Path]:
    """The image and mask files of a set folder, split by split."""
    folders = [set_dir / f"{split}{kind}" for split in EXPECTED[set_dir.name] for kind in ("", "_annot")]
    return [path for folder in folders if folder.is_dir() for path in list_images(folder)]


def git_blob_id(path: Path) -> str:
    """The file's git blob id (what ``git ls-tree`` lists): sha1 of ``blob <size>\\0`` + content."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def damage(path: Path, set_dir: Path) -> str | None:
    """Why a file of a set is not intact, or None: NASA's files by content hash, others by decoding."""
    relative = f"{set_dir.name}/{path.relative_to(set_dir).as_posix()}"
    published = MANIFEST.get(relative)
    if published and git_blob_id(path) == published:
        return None
    try:
        read_array(path)
    except DataError as err:
        return str(err).split("; ")[0]  # unreadable: say how (truncated, not an image, ...)
    return f"{path}: damaged (its content differs from NASA's published file)" if published else None


def verify(set_dir: Path) -> list[str]:
    """Problems of a set folder, one line each: wrong per-split counts, damaged files (empty: complete)."""
    if not set_dir.is_dir():
        return [f"{set_dir} is missing"]
    problems = []
    for split, (images, masks) in count_files(set_dir).items():
        want = EXPECTED[set_dir.name][split]
        allowed = {want, want - MAY_LACK.get((set_dir.name, split), 0)}
        if masks != want or images not in allowed:
            problems.append(f"{set_dir / split}: {images} images / {masks} masks, expected {want} / {want}")
    return problems + [why for path in set_files(set_dir) if (why := damage(path, set_dir))]


def download(url: str, dest: Path, timeout: float = TIMEOUT_S) -> Path:
    """Fetch ``url`` to ``dest`` with a progress bar; offline, fail fast with a message naming --from.

    The file appears under its name only once complete, so a cached archive is always whole.
    """
    tmp = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {urlparse(url).netloc}") as bar:
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


def _stage(source: str, todo: set[str], staging: Path, cache: Path) -> None:
    """Put the ``todo`` sets of ``source`` into ``staging/<Set>``; a URL is downloaded into ``cache`` once.

    A cached archive that turns out unreadable or incomplete is deleted and downloaded once more, so
    a bad download never sticks.
    """
    if "://" in source:
        cached = cache / (PurePosixPath(source).name or "archive.tar.gz")
        for attempt in ("cached", "fresh") if cached.is_file() else ("fresh",):
            if attempt == "fresh":
                download(source, cached)
            try:
                _stage_from_tar(cached, todo, staging)
                _check_staged(source, todo, staging)
                return
            except DataError:
                cached.unlink(missing_ok=True)
                if attempt == "fresh":
                    raise
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
    elif Path(source).is_dir():
        sets_dir = _find_sets_dir(Path(source))
        for s in todo:
            if (sets_dir / s).is_dir():
                shutil.copytree(sets_dir / s, staging / s)
    elif Path(source).is_file():
        _stage_from_tar(Path(source), todo, staging)
    else:
        raise DataError(f"{source}: no such file or folder; --from takes a tarball, a folder or a URL")
    _check_staged(source, todo, staging)


def _check_staged(source: str, todo: set[str], staging: Path) -> None:
    """Raise unless every wanted set was found in the source and verifies."""
    for s in sorted(todo):
        if not (staging / s).is_dir():
            raise DataError(f"{source}: holds no {s} folder; use a copy of the full benchmark")
        problems = verify(staging / s)
        if problems:
            shown = "; ".join(p.replace(str(staging) + os.sep, "") for p in problems[:3])
            raise DataError(f"{source}: set {s} is incomplete or damaged: {shown}; use a complete copy")


def _install(staged: Path, target: Path, force: bool) -> tuple[list[str], list[str]]:
    """Move a verified staged set into place; into an existing folder, only the files that differ.

    Returns the replaced files and the files of ``target`` that the source lacks (kept, never deleted).
    """
    if not target.is_dir():
        staged.replace(target)
        return [], []
    new = {path.relative_to(staged).as_posix(): path for path in set_files(staged)}
    extra = [rel for path in set_files(target) if (rel := path.relative_to(target).as_posix()) not in new]
    replaced = []
    for relative, path in new.items():
        old = target / relative
        if force or not old.is_file() or git_blob_id(old) != git_blob_id(path):
            old.parent.mkdir(parents=True, exist_ok=True)
            path.replace(old)
            replaced.append(relative)
    return replaced, extra


def fetch(
    names: list[str], root: str | Path, source: str | None = None, force: bool = False
) -> dict[str, str]:
    """Make ``root/<Set>`` complete and intact for each set in ``names``; returns ``set -> what was done``.

    ``force`` re-installs every file of the sets from ``source`` even when they verify.
    """
    root = Path(root)
    wanted = [set_name(n) for n in names]
    broken = {s: verify(root / s) for s in wanted}
    status = {s: "present" for s in wanted if not broken[s] and not force}
    todo = {s for s in wanted if s not in status}
    if not todo:
        return status
    staging = root / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _stage(source or source_url(), todo, staging, root / ".cache")
        for s in sorted(todo):
            existed = (root / s).is_dir()
            replaced, extra = _install(staging / s, root / s, force)
            if verify(root / s):
                raise DataError(
                    f"{root / s}: holds files that are not part of the set ({', '.join(extra[:3])}); "
                    "move them elsewhere and run again"
                )
            if not existed:
                status[s] = "installed"
            elif force:
                status[s] = f"re-installed ({len(replaced)} files)"
            else:
                shown = ", ".join(replaced[:3]) + (", ..." if len(replaced) > 3 else "")
                status[s] = f"repaired (replaced {len(replaced)} damaged or missing file(s): {shown})"
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {s: status[s] for s in wanted}
