"""Turning a DatasetSpec's ``source`` into a listing: one importer per kind of source.

The importers are a registry tried in order; each says whether it recognises a source and
lists what it holds. Nothing here decodes an image: engine/data/cache.py does that once for
every kind of source, so all of them get the same checks and the same report.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn_lab.engine.data.listing import ArrayListing, FileEntry, FileListing, Listing, Skip
from cnn_lab.engine.errors import DataError

SAMPLE_PREFIX = "sample:"
Progress = Callable[[str, int, int], None]
StopFlag = Callable[[], bool]


@dataclass(frozen=True)
class Importer:
    kind: str
    label: str
    recognises: Callable[[str], bool]
    list: Callable[[str, Progress, StopFlag], Listing]


_IMPORTERS: list[Importer] = []


def register_importer(kind: str, label: str, recognises: Callable[[str], bool]):  # type: ignore[no-untyped-def]
    """Add an importer; the first whose ``recognises(source)`` is true lists the source."""

    def decorate(fn: Callable[[str, Progress, StopFlag], Listing]):  # type: ignore[no-untyped-def]
        _IMPORTERS.append(Importer(kind, label, recognises, fn))
        return fn

    return decorate


def source_kind(source: str) -> str:
    return _find(source).kind


def list_source(
    source: str,
    progress: Progress = lambda *_: None,
    should_stop: StopFlag = lambda: False,
) -> Listing:
    """List what ``source`` holds; a source cnn-lab cannot read raises a DataError sentence."""
    return _find(source).list(source, progress, should_stop)


def _find(source: str) -> Importer:
    for importer in _IMPORTERS:
        if importer.recognises(source):
            return importer
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"There is no file or folder at {source!r}.",
            hint="Give a folder with one sub-folder per class, a CSV, a zip or tar archive, "
            "an .npz file, or a sample such as 'sample:shapes'.",
        )
    raise DataError(
        f"cnn-lab cannot read {source!r} as a dataset.",
        hint="Give a folder with one sub-folder per class, a CSV of path,label, a zip or tar "
        "archive of either, or a NumPy .npz with images and labels.",
    )


def _path(source: str) -> Path:
    return Path(os.path.abspath(Path(source).expanduser()))


def _is_file_with_suffix(*suffixes: str) -> Callable[[str], bool]:
    return lambda s: s.lower().endswith(suffixes) and _path(s).is_file()


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


# ------------------------------------------------------------------------------- samples


@register_importer("sample", "Built-in sample", lambda s: s.startswith(SAMPLE_PREFIX))
def _list_sample(source: str, progress: Progress, should_stop: StopFlag) -> Listing:
    from cnn_lab.engine.data.samples import load_sample

    images = load_sample(source[len(SAMPLE_PREFIX) :])
    return ArrayListing(
        "sample", source, images.images, images.labels, images.classes, native_size=True
    )


# ------------------------------------------------------------------------------- NumPy


@register_importer("npz", "NumPy .npz", _is_file_with_suffix(".npz"))
def _list_npz(source: str, progress: Progress, should_stop: StopFlag) -> Listing:
    path = _path(source)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path.name} is not a readable NumPy .npz file ({exc}).") from None
    images = _pick(arrays, ("images", "x", "X", "data", "x_train"), path, "images")
    labels = _pick(arrays, ("labels", "y", "Y", "targets", "y_train"), path, "labels")
    names = next((arrays[k] for k in ("classes", "class_names") if k in arrays), None)
    images = _as_nhwc_uint8(images, path)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(images):
        raise DataError(f"{path.name} holds {len(images)} images but {len(labels)} labels.")
    if labels.dtype.kind in "iu":
        ids = labels.astype(np.int64)
        if len(ids) and ids.min() < 0:
            raise DataError(f"{path.name} has negative labels; labels must be 0, 1, 2, …")
        count = int(ids.max()) + 1 if len(ids) else 0
        if names is not None and len(names) >= count:
            classes = tuple(str(n) for n in names)
        else:
            classes = tuple(str(i) for i in range(count))
    elif labels.dtype.kind in "USO":
        classes = tuple(sorted({str(x) for x in labels}))
        lookup = {name: i for i, name in enumerate(classes)}
        ids = np.array([lookup[str(x)] for x in labels], dtype=np.int64)
    else:
        raise DataError(f"{path.name} has labels of type {labels.dtype}; use integers or names.")
    return ArrayListing("npz", path.name, images, ids, classes)


def _pick(
    arrays: dict[str, np.ndarray], keys: tuple[str, ...], path: Path, what: str
) -> np.ndarray:
    for key in keys:
        if key in arrays:
            return arrays[key]
    raise DataError(
        f"{path.name} has no {what} array (looked for {', '.join(keys)}; "
        f"it has {', '.join(arrays) or 'nothing'})."
    )


def _as_nhwc_uint8(images: np.ndarray, path: Path) -> np.ndarray:
    """Accept N×H×W, N×H×W×C and N×C×H×W; integers or floats; return uint8 N×H×W×3|1."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"{path.name}: images must be N×H×W or N×H×W×C, got shape {x.shape}.")
    if x.shape[-1] not in (1, 3, 4) and x.shape[1] in (1, 3, 4):
        x = np.moveaxis(x, 1, -1)  # N×C×H×W, as PyTorch stores images
    if x.shape[-1] not in (1, 3, 4):
        raise DataError(f"{path.name}: images need 1, 3 or 4 channels, got shape {x.shape}.")
    if x.dtype == np.uint8:
        pass
    elif x.dtype == np.uint16:
        x = (x.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif x.dtype.kind in "fiu":
        x = x.astype(np.float32)
        low, high = float(np.nanmin(x)), float(np.nanmax(x))
        if low >= 0.0 and high <= 1.0:
            x = x * 255.0
        elif not (low >= 0.0 and high <= 255.0):
            x = (x - low) * (255.0 / max(high - low, 1e-12))
        x = np.nan_to_num(x, nan=0.0).round().clip(0, 255).astype(np.uint8)
    else:
        raise DataError(f"{path.name}: images of type {x.dtype} cannot be used.")
    if x.shape[-1] == 4:
        x = x[..., :3]  # NumPy sources carry no compositing intent; drop alpha
    return np.ascontiguousarray(x)


# ------------------------------------------------------------------------------- CSV

_PATH_COLUMNS = ("path", "file", "filename", "image", "img", "filepath")
_LABEL_COLUMNS = ("label", "class", "category", "target", "y")


@register_importer("csv", "CSV of path,label", _is_file_with_suffix(".csv", ".tsv"))
def _list_csv(source: str, progress: Progress, should_stop: StopFlag) -> Listing:
    return _list_csv_file(_path(source), base_shown="")


def _list_csv_file(path: Path, base_shown: str, inside: Path | None = None) -> FileListing:
    """List a path,label CSV; ``inside`` confines every path to that folder (an archive's).

    A CSV from an archive is as untrusted as the archive: unconfined, a row naming
    ``../../home/me/photo.jpg`` or ``/etc/x.png`` would pull files from anywhere on the disk
    into the dataset (and into its cache, its reports and anything exported from it).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path.name} cannot be read as a text CSV ({exc}).") from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path.name} is empty.")
    head = [c.strip().lower() for c in rows[0]]
    path_col, label_col, start = 0, 1, 0
    if any(c in _PATH_COLUMNS for c in head) or any(c in _LABEL_COLUMNS for c in head):
        path_col = next((i for i, c in enumerate(head) if c in _PATH_COLUMNS), 0)
        label_col = next((i for i, c in enumerate(head) if c in _LABEL_COLUMNS), 1)
        start = 1
    entries: list[FileEntry] = []
    skipped: list[Skip] = []
    for line, row in enumerate(rows[start:], start=start + 1):
        if len(row) <= max(path_col, label_col):
            skipped.append(Skip(f"{path.name}:{line}", "line has no path and label columns"))
            continue
        name, label = row[path_col].strip(), row[label_col].strip()
        shown = base_shown + name
        if not name or not label:
            skipped.append(Skip(f"{path.name}:{line}", "empty path or label"))
            continue
        if inside is not None:
            _check_inside(path, line, name, inside)
        target = Path(name) if Path(name).is_absolute() else path.parent / name
        if not target.is_file():
            skipped.append(Skip(shown, "file not found"))
            continue
        entries.append(FileEntry(target, label, shown))
    classes = tuple(sorted({e.label for e in entries}))
    return FileListing("csv", path.parent, entries, classes, skipped)


def _check_inside(csv_path: Path, line: int, name: str, inside: Path) -> None:
    """Refuse a CSV row whose path is absolute, climbs with '..' or leaves ``inside``.

    The whole import is refused rather than the row skipped: such a row is never an accident
    of a well-made archive, and a person should see it before trusting the rest of the file.
    Backslashes count as separators, as in archives.py, so Windows-style rows are judged too.
    """
    posix = name.replace("\\", "/")
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    why = ""
    if posix.startswith("/") or Path(name).is_absolute():
        why = "is an absolute path"
    elif parts and len(parts[0]) >= 2 and parts[0][1] == ":" and parts[0][0].isalpha():
        why = "is an absolute Windows path (drive letter)"
    elif ".." in parts:
        why = "climbs out with '..'"
    elif not (csv_path.parent / name).resolve().is_relative_to(inside.resolve()):
        why = "leads outside the archive through a link"
    if why:
        raise DataError(
            f"{csv_path.name}, line {line}: the path {name!r} {why}; a CSV inside an archive "
            "may only name files inside that archive.",
            hint="Put the images in the archive and name them relative to the CSV, "
            "for example pics/cat1.jpg.",
        )


# ------------------------------------------------------------------------------- archives


def _looks_like_archive(source: str) -> bool:
    path = _path(source)
    if source.startswith(SAMPLE_PREFIX) or not path.is_file():
        return False
    from cnn_lab.engine.data.archives import is_archive

    return is_archive(path)


@register_importer("archive", "Zip or tar archive", _looks_like_archive)
def _list_archive(source: str, progress: Progress, should_stop: StopFlag) -> Listing:
    from cnn_lab.engine.data.archives import extract_archive
    from cnn_lab.engine.data.paths import imports_dir

    path = _path(source)
    stat = path.stat()
    key = hashlib.blake2b(
        f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode(), digest_size=10
    ).hexdigest()
    dest = imports_dir() / f"{path.stem[:40]}-{key}"
    done_marker = dest / ".cnn-lab-complete"
    if not done_marker.exists():
        shutil.rmtree(dest, ignore_errors=True)  # a half-finished earlier unpack
        try:
            dest.mkdir(parents=True)
            extracted = extract_archive(
                path,
                dest,
                progress=lambda done, total: progress("Unpacking", done, total),
                should_stop=should_stop,
            )
            skipped = [Skip(name, reason) for name, reason in extracted.skipped]
            _write_skips(dest / ".cnn-lab-skipped", skipped)
            done_marker.write_text(str(extracted.root.relative_to(dest)))
        except BaseException as exc:
            # A refused archive (a bomb, too many files), a cancel or a full disk leaves no
            # trace in the imports folder: extract_archive removed what it wrote, this is
            # the folder made for it.
            shutil.rmtree(dest, ignore_errors=True)
            if isinstance(exc, OSError):  # the import's folder or its notes
                raise DataError(
                    f"Could not unpack {path.name} into {dest}: {exc.strerror or exc}.",
                    hint="Check the free space and permissions of cnn-lab's cache folder.",
                ) from None
            raise
    root = dest / done_marker.read_text()
    skipped = _read_skips(dest / ".cnn-lab-skipped")
    # One CSV at the top means "path,label" rows (its images may sit in folders beside it);
    # otherwise the archive holds class folders.
    csvs = sorted(
        p
        for p in root.iterdir()
        if p.suffix.lower() in (".csv", ".tsv") and p.is_file() and not _is_hidden(p.name)
    )
    if len(csvs) == 1:
        listing = _list_csv_file(csvs[0], base_shown="", inside=dest)
    else:
        listing = _list_folder_path(root, progress, should_stop)
    listing.kind = "archive"
    listing.skipped = skipped + listing.skipped
    return listing


def _write_skips(path: Path, skips: list[Skip]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows((s.path, s.reason) for s in skips)


def _read_skips(path: Path) -> list[Skip]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return [Skip(row[0], row[1]) for row in csv.reader(fh) if len(row) == 2]


# ------------------------------------------------------------------------------- folders


def _class_folders(root: Path) -> list[Path]:
    return sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not _is_hidden(p.name)),
        key=lambda p: p.name,
    )


@register_importer("folder", "Folder of class folders", lambda s: _path(s).is_dir())
def _list_folder(source: str, progress: Progress, should_stop: StopFlag) -> Listing:
    return _list_folder_path(_path(source), progress, should_stop)


def _list_folder_path(root: Path, progress: Progress, should_stop: StopFlag) -> FileListing:
    from cnn_lab.engine.data.decode import IMAGE_SUFFIXES
    from cnn_lab.engine.errors import Cancelled

    entries: list[FileEntry] = []
    skipped: list[Skip] = []
    folders = _class_folders(root)
    for item in sorted(root.iterdir()):
        if item.is_file() and not _is_hidden(item.name):
            skipped.append(Skip(item.name, "not inside a class folder"))
    for number, folder in enumerate(folders):
        if should_stop():
            raise Cancelled()
        progress("Listing files", number, len(folders))
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
            for name in sorted(filenames):
                if _is_hidden(name):
                    continue
                file = Path(dirpath) / name
                shown = str(file.relative_to(root))
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    suffix = file.suffix or "no extension"
                    skipped.append(Skip(shown, f"not an image file type ({suffix})"))
                    continue
                entries.append(FileEntry(file, folder.name, shown))
    progress("Listing files", len(folders), len(folders))
    return FileListing("folder", root, entries, tuple(f.name for f in folders), skipped)
