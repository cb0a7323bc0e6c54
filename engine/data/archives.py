"""Safe extraction of zip and tar archives that people import as datasets.

An archive from the internet is untrusted input. ``zipfile.extractall`` and
``tarfile.extractall`` (before the 'data' filter) will follow ``../`` and absolute names out of
the destination, recreate symlinks that later writes go through, create device files, and
happily write a 4 GB zip bomb to disk. So this module never calls either: it plans every
member first, checks the plan against ``ArchiveLimits`` before writing a byte, then streams
each regular file itself while counting what really comes out.

Rules, each with a reason in ``Extracted.skipped`` when it drops a member:

* nothing is ever written outside ``dest``: names with ``..``, absolute names (including
  Windows drive letters and backslash paths, since backslashes are treated as separators),
  and targets whose resolved path leaves ``dest`` (a symlinked folder already in ``dest``)
  are skipped;
* only regular files and folders are created: symlinks, hard links, device files and FIFOs
  are skipped; file modes from the archive are ignored (no set-uid, no read-only folders);
* existing files are never overwritten: files are created with exclusive mode, so a name
  that exists already (or twice in the archive) is skipped, and a clean-up after a failure
  can only ever remove what this call created;
* macOS metadata (``__MACOSX/``, ``._*``, ``.DS_Store``) is skipped;
* declared sizes and the file count are checked against the limits before writing; bytes
  are counted again while streaming, so a member producing more than it declared is caught;
* any failure (a limit, a damaged archive, a full disk) or a cancel removes every file and
  folder this call created, so ``dest`` never holds half a dataset.
"""

from __future__ import annotations

import errno
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from cnn_lab.engine.errors import Cancelled, UserError
from cnn_lab.engine.util.formatting import format_bytes

__all__ = [
    "ARCHIVE_SUFFIXES",
    "IMPORT_LIMITS",
    "ArchiveLimits",
    "Cancelled",
    "Extracted",
    "extract_archive",
    "is_archive",
]

ARCHIVE_SUFFIXES: tuple[str, ...] = (
    ".zip",
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz2",
    ".tar.xz",
    ".txz",
)

_CHUNK = 1 << 20  # bytes per read while streaming a member

# Errors a damaged archive raises while being read: zipfile, tarfile and the gzip, bz2 and
# lzma decompressors underneath them (gzip and bz2 report bad data as OSError or EOFError).
_READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    OSError,
    ValueError,
)
try:  # zlib and lzma are optional in a custom-built Python
    import zlib

    _READ_ERRORS += (zlib.error,)
except ImportError:  # pragma: no cover
    pass
try:
    import lzma

    _READ_ERRORS += (lzma.LZMAError,)
except ImportError:  # pragma: no cover
    pass

# errno values that mean "this one name can't be created here", as opposed to a disk problem.
_NAME_ERRNOS = frozenset(
    {errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ}
)


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps that stop an archive from filling the disk or the file table.

    ``max_ratio`` (uncompressed / compressed size of one zip member) is what catches zip
    bombs; it only applies to members larger than ``ratio_min_bytes`` because small files
    (a blank PNG's worth of zeros, a CSV) legitimately compress hundreds of times and a bomb
    is harmful only when it is big. Tar archives are compressed as one stream, so they have no
    per-member ratio; their declared sizes are exact and capped by the byte limits instead.
    """

    max_total_bytes: int = 8 * 1024**3
    max_files: int = 200_000
    max_ratio: float = 200.0
    max_member_bytes: int = 4 * 1024**3
    ratio_min_bytes: int = 1024**2


@dataclass(frozen=True)
class Extracted:
    """What an extraction produced.

    ``root`` is the dataset folder: the single top-level folder when the archive holds exactly
    one (the usual ``dataset.zip`` → ``dataset/``), otherwise ``dest``. ``skipped`` lists
    (member name, reason) for every entry that was not extracted.
    """

    root: Path
    files: int
    bytes: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


IMPORT_LIMITS = ArchiveLimits()
"""The limits every import uses when its caller passes none: one place to tighten them (a
locked-down machine, a test that needs a small file-count cap without 200,000 files)."""


def is_archive(path: Path) -> bool:
    """Whether ``path`` is a zip or tar (optionally gzip/bzip2/xz compressed) archive.

    Decided by content, not by name: a download called ``data`` or ``images.bin`` still
    counts, and an image renamed to ``.zip`` does not. Any error reading the file means no.
    """
    try:
        if not path.is_file():
            return False
        return zipfile.is_zipfile(path) or tarfile.is_tarfile(path)
    except Exception:  # a predicate: unreadable or strange files are simply not archives
        return False


# ----------------------------------------------------------------------------------------
# Reading: one small adapter per archive kind, producing the same member records.


@dataclass(frozen=True)
class _Member:
    name: str  # as stored in the archive, for the report
    kind: str  # "file", "dir" or a skip reason's noun ("symbolic link", ...)
    size: int  # declared uncompressed size
    compressed: int  # declared compressed size (zip), or -1 where unknown (tar)
    handle: object  # the zipfile.ZipInfo or tarfile.TarInfo
    encrypted: bool = False


class _Reader:
    def members(self) -> Iterator[_Member]:
        raise NotImplementedError

    def open(self, member: _Member) -> AbstractContextManager[IO[bytes]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _ZipReader(_Reader):
    def __init__(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path)

    def members(self) -> Iterator[_Member]:
        for info in self._zip.infolist():
            yield _Member(
                name=info.filename,
                kind=_zip_kind(info),
                size=info.file_size,
                compressed=info.compress_size,
                handle=info,
                encrypted=bool(info.flag_bits & 0x1),
            )

    def open(self, member: _Member) -> AbstractContextManager[IO[bytes]]:
        assert isinstance(member.handle, zipfile.ZipInfo)
        return self._zip.open(member.handle)

    def close(self) -> None:
        self._zip.close()


def _zip_kind(info: zipfile.ZipInfo) -> str:
    if info.is_dir():
        return "dir"
    # The high 16 bits hold a Unix st_mode when the zip was made on Unix. Checked whatever
    # system the zip claims, so a symlink can't hide behind a "made on Windows" flag. No file
    # type bits (Windows tools, Python's writestr) means a plain file.
    unix_mode = info.external_attr >> 16
    if stat.S_IFMT(unix_mode) in (0, stat.S_IFREG):
        return "file"
    return _special_kind(unix_mode)


def _special_kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "entry of unknown type"


class _TarReader(_Reader):
    def __init__(self, path: Path) -> None:
        # Random-access mode: members are planned in one pass, then read in the same order,
        # so even a compressed tar is decompressed only twice and never seeks backwards again.
        self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()

    def members(self) -> Iterator[_Member]:
        while (info := self._tar.next()) is not None:
            yield _Member(
                name=info.name,
                kind=_tar_kind(info),
                size=info.size if info.isreg() else 0,
                compressed=-1,
                handle=info,
            )

    @contextmanager
    def open(self, member: _Member) -> Iterator[IO[bytes]]:
        assert isinstance(member.handle, tarfile.TarInfo)
        source = self._tar.extractfile(member.handle)
        if source is None:  # only for non-regular members, which are never opened
            raise tarfile.ReadError(f"cannot read {member.name}")
        with source:
            yield source

    def close(self) -> None:
        self._tar.close()


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.isreg():  # includes GNU sparse and contiguous files
        return "file"
    if info.isdir():
        return "dir"
    if info.issym():
        return "symbolic link"
    if info.islnk():
        return "hard link"
    if info.ischr() or info.isblk():
        return "device file"
    if info.isfifo():
        return "named pipe (FIFO)"
    return "entry of unknown type"


def _open_reader(archive: Path) -> _Reader:
    try:
        if zipfile.is_zipfile(archive):
            return _ZipReader(archive)
        return _TarReader(archive)
    except OSError as exc:
        if exc.errno is None:  # gzip/bz2 format errors are OSErrors without an errno
            raise _damaged(archive, exc) from None
        raise UserError(
            f"Could not read the archive {archive}: {exc.strerror or exc}.",
            hint="Check that the file exists and that you may read it.",
        ) from None
    except _READ_ERRORS as exc:
        raise _damaged(archive, exc) from None


def _damaged(archive: Path, exc: BaseException | str) -> UserError:
    detail = exc if isinstance(exc, str) else (str(exc).strip() or type(exc).__name__)
    return UserError(
        f"{archive.name} is damaged or is not a zip or tar archive ({detail}).",
        hint="Download or create the archive again, or unpack it yourself and import the folder.",
    )


# ----------------------------------------------------------------------------------------
# Planning: decide every member's fate and check the limits before anything is written.


@dataclass(frozen=True)
class _Planned:
    member: _Member
    path: PurePosixPath  # safe relative path inside dest


def _safe_relative(name: str) -> PurePosixPath | str:
    """The member's path relative to dest, or the reason it must be skipped.

    Backslashes count as separators: archives made on Windows sometimes use them, and on
    Windows ``..\\x`` or ``C:\\x`` would escape if they were taken as plain characters.
    """
    if "\x00" in name:
        return "name contains a NUL character"
    posix = name.replace("\\", "/")
    if posix.startswith("/"):
        return "absolute path (would be written outside the destination folder)"
    parts = [part for part in posix.split("/") if part not in ("", ".")]
    if parts and len(parts[0]) >= 2 and parts[0][1] == ":" and parts[0][0].isalpha():
        return "absolute Windows path (drive letter)"
    if ".." in parts:
        return "path contains '..' (would be written outside the destination folder)"
    return PurePosixPath(*parts) if parts else PurePosixPath()


def _is_macos_junk(path: PurePosixPath) -> bool:
    return "__MACOSX" in path.parts or path.name == ".DS_Store" or path.name.startswith("._")


@dataclass
class _Plan:
    files: list[_Planned] = field(default_factory=list)
    dirs: list[_Planned] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    total_bytes: int = 0


def _plan(
    reader: _Reader,
    archive: Path,
    limits: ArchiveLimits,
    should_stop: Callable[[], bool],
) -> _Plan:
    plan = _Plan()
    seen: set[PurePosixPath] = set()
    # A header bomb (millions of empty or skipped entries) must not keep the scan busy: stop
    # once the entries clearly can't be a dataset within the file limit.
    max_entries = 2 * limits.max_files + 10_000
    for count, member in enumerate(reader.members(), start=1):
        if count % 1024 == 0 and should_stop():
            raise Cancelled()
        if count > max_entries:
            raise _too_many(archive, limits)
        safe = _safe_relative(member.name)
        if isinstance(safe, str):
            plan.skipped.append((member.name, safe))
            continue
        if _is_macos_junk(safe):
            plan.skipped.append((member.name, "macOS metadata, not part of the dataset"))
            continue
        if member.kind == "dir":
            if safe.parts:
                plan.dirs.append(_Planned(member, safe))
            continue
        if member.kind != "file":
            plan.skipped.append(
                (member.name, f"{member.kind}; only files and folders are unpacked")
            )
            continue
        if not safe.parts:
            plan.skipped.append((member.name, "file entry without a name"))
            continue
        if member.encrypted:
            plan.skipped.append((member.name, "encrypted (password-protected)"))
            continue
        if safe in seen:
            plan.skipped.append((member.name, "duplicate entry; the first copy was kept"))
            continue
        seen.add(safe)
        _check_member(member, archive, limits)
        plan.files.append(_Planned(member, safe))
        plan.total_bytes += member.size
        if len(plan.files) > limits.max_files:
            raise _too_many(archive, limits)
        if plan.total_bytes > limits.max_total_bytes:
            raise _too_big(archive, plan.total_bytes, limits.max_total_bytes)
    return plan


def _check_member(member: _Member, archive: Path, limits: ArchiveLimits) -> None:
    if member.size > limits.max_member_bytes:
        raise UserError(
            f"{member.name} in {archive.name} would unpack to {format_bytes(member.size)}, "
            f"which exceeds the limit of {format_bytes(limits.max_member_bytes)} per file.",
            hint="Unpack the archive yourself and import the folder.",
        )
    if member.compressed >= 0 and member.size > limits.ratio_min_bytes:
        ratio = member.size / max(member.compressed, 1)
        if ratio > limits.max_ratio:
            raise UserError(
                f"{member.name} in {archive.name} expands {ratio:,.0f} times (from "
                f"{format_bytes(member.compressed)} to {format_bytes(member.size)}), which "
                f"exceeds the limit of {limits.max_ratio:,.0f} times; the archive looks like a "
                "zip bomb.",
                hint="Import it only if you trust its source, after unpacking it yourself.",
            )


def _too_many(archive: Path, limits: ArchiveLimits) -> UserError:
    return UserError(
        f"{archive.name} holds more than {limits.max_files:,} files, which exceeds the limit "
        f"of {limits.max_files:,}.",
        hint="Split it into smaller archives, or unpack it yourself and import the folder.",
    )


def _too_big(archive: Path, size: int, limit: int) -> UserError:
    return UserError(
        f"{archive.name} would unpack to more than {format_bytes(size)}, which exceeds the "
        f"limit of {format_bytes(limit)}.",
        hint="Split it into smaller archives, or unpack it yourself and import the folder.",
    )


# ----------------------------------------------------------------------------------------
# Writing: create only inside dest, record everything created, undo it on any failure.


class _Writer:
    """Creates folders and files under ``dest`` and remembers them for clean-up."""

    def __init__(self, dest: Path) -> None:
        self.created_dest = not dest.exists()
        dest.mkdir(parents=True, exist_ok=True)
        self.dest = dest
        self.root = dest.resolve()
        self.files: list[Path] = []
        self.dirs: list[Path] = []

    def target(self, relative: PurePosixPath) -> Path | str:
        """The absolute target inside dest, or the reason it would land outside."""
        target = self.root.joinpath(*relative.parts)
        # resolve() follows symlinks that already exist under dest; none are ever created by
        # us, but dest may hold some from before, and they must not be written through.
        if not target.resolve().is_relative_to(self.root):
            return "path leads outside the destination folder through an existing link"
        return target

    def make_dirs(self, directory: Path) -> None:
        missing: list[Path] = []
        current = directory
        while current != self.root and not current.is_dir():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            path.mkdir()  # raises FileExistsError where a file holds the name
            self.dirs.append(path)

    def create(self, path: Path) -> IO[bytes]:
        # "x": O_CREAT | O_EXCL, which never overwrites and never follows a planted symlink.
        handle = open(path, "xb")  # noqa: SIM115 - closed by the caller, tracked for clean-up
        self.files.append(path)
        return handle

    def clean_up(self) -> None:
        for path in reversed(self.files):
            with suppress(OSError):
                path.unlink()
        for path in sorted(self.dirs, key=lambda p: len(p.parts), reverse=True):
            with suppress(OSError):
                path.rmdir()  # only if empty: never removes anything we did not create
        if self.created_dest:
            with suppress(OSError):
                self.dest.rmdir()


class _Streamed:
    """Counts bytes actually written, against the limits, across all members."""

    def __init__(self, archive: Path, limits: ArchiveLimits, total: int) -> None:
        self.archive = archive
        self.limits = limits
        self.total = total
        self.written = 0


def extract_archive(
    archive: Path,
    dest: Path,
    limits: ArchiveLimits | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Extracted:
    """Unpack ``archive`` (zip, tar, tar.gz/tgz, tar.bz2, tar.xz) into ``dest`` safely.

    ``progress(bytes_written, bytes_total)`` is called as data is written (total is the sum of
    the declared sizes). ``should_stop()`` is polled between members and between chunks; when
    it returns true everything written is removed and ``Cancelled`` is raised. Limits, damage
    and disk errors raise ``UserError`` after the same clean-up. ``limits`` defaults to
    ``IMPORT_LIMITS`` as it is at the call. See the module docstring for the rules that decide
    which members are skipped.
    """
    archive = Path(archive)
    dest = Path(dest)
    limits = limits if limits is not None else IMPORT_LIMITS  # read now: it may be changed
    reader = _open_reader(archive)
    try:
        try:
            plan = _plan(reader, archive, limits, should_stop)
        except _READ_ERRORS as exc:
            raise _damaged(archive, exc) from None
        _check_free_space(archive, dest, plan.total_bytes)
        writer = _Writer(dest)
        try:
            return _write(reader, plan, writer, archive, limits, progress, should_stop)
        except BaseException:
            writer.clean_up()
            raise
    finally:
        reader.close()


def _check_free_space(archive: Path, dest: Path, needed: int) -> None:
    existing = dest
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return  # unknown: the write itself will report a full disk
    if needed > free:
        raise UserError(
            f"Unpacking {archive.name} needs {format_bytes(needed)}, but only "
            f"{format_bytes(free)} is free on the disk that holds {dest}.",
            hint="Free some space or choose a folder on another disk.",
        )


def _write(
    reader: _Reader,
    plan: _Plan,
    writer: _Writer,
    archive: Path,
    limits: ArchiveLimits,
    progress: Callable[[int, int], None] | None,
    should_stop: Callable[[], bool],
) -> Extracted:
    skipped = list(plan.skipped)
    extracted_tops: set[str] = set()
    top_level_files = False
    for planned in plan.dirs:
        target = writer.target(planned.path)
        if isinstance(target, str):
            skipped.append((planned.member.name, target))
            continue
        try:
            writer.make_dirs(target)
        except OSError as exc:
            skipped.append((planned.member.name, _name_error(exc)))
            continue
        extracted_tops.add(planned.path.parts[0])

    counter = _Streamed(archive, limits, plan.total_bytes)
    files = 0
    for planned in plan.files:
        if should_stop():
            raise Cancelled()
        target = writer.target(planned.path)
        if isinstance(target, str):
            skipped.append((planned.member.name, target))
            continue
        reason = _write_member(reader, planned, target, writer, counter, progress, should_stop)
        if reason is not None:
            skipped.append((planned.member.name, reason))
            continue
        files += 1
        extracted_tops.add(planned.path.parts[0])
        top_level_files = top_level_files or len(planned.path.parts) == 1

    if progress is not None:
        progress(counter.written, counter.total)
    root = writer.dest
    if len(extracted_tops) == 1 and not top_level_files:
        root = writer.dest / next(iter(extracted_tops))
    return Extracted(root=root, files=files, bytes=counter.written, skipped=skipped)


def _write_member(
    reader: _Reader,
    planned: _Planned,
    target: Path,
    writer: _Writer,
    counter: _Streamed,
    progress: Callable[[int, int], None] | None,
    should_stop: Callable[[], bool],
) -> str | None:
    """Stream one member to ``target``; a skip reason, or None when written.

    Per-name problems (a file already there, a name the file system refuses, an unsupported
    zip compression method) skip the member; a damaged archive, a broken limit or a full disk
    raise, and the caller removes everything.
    """
    member = planned.member
    archive, limits = counter.archive, counter.limits
    with ExitStack() as stack:
        try:
            source = stack.enter_context(reader.open(member))
        except NotImplementedError as exc:  # zipfile: a compression method it can't decode
            return f"compressed with a method that cannot be read ({exc})"
        except _READ_ERRORS as exc:
            raise _damaged(archive, exc) from None
        try:
            writer.make_dirs(target.parent)
            sink = stack.enter_context(writer.create(target))
        except OSError as exc:
            if exc.errno in _NAME_ERRNOS:
                return _name_error(exc)
            raise _write_failed(archive, target, exc) from None
        member_bytes = 0
        while True:
            try:
                chunk = source.read(_CHUNK)
            except _READ_ERRORS as exc:
                raise _damaged(archive, exc) from None
            if not chunk:
                break
            member_bytes += len(chunk)
            counter.written += len(chunk)
            # Checked before the chunk is written, so a lying member never gets its extra
            # bytes onto the disk.
            if member_bytes > member.size:
                raise _damaged(
                    archive, f"{member.name} declares {member.size:,} bytes but holds more"
                )
            if member_bytes > limits.max_member_bytes:
                raise _member_too_big(member, archive, limits)
            if counter.written > limits.max_total_bytes:
                raise _too_big(archive, counter.written, limits.max_total_bytes)
            try:
                sink.write(chunk)
            except OSError as exc:
                raise _write_failed(archive, target, exc) from None
            if progress is not None:
                progress(counter.written, counter.total)
            if should_stop():
                raise Cancelled()
    return None


def _member_too_big(member: _Member, archive: Path, limits: ArchiveLimits) -> UserError:
    return UserError(
        f"{member.name} in {archive.name} unpacks to more than "
        f"{format_bytes(limits.max_member_bytes)}, which exceeds the limit per file.",
        hint="Unpack the archive yourself and import the folder.",
    )


def _name_error(exc: OSError) -> str:
    if exc.errno == errno.EEXIST:
        return "a file or folder with this name already exists in the destination folder"
    if exc.errno in (errno.ENOTDIR, errno.EISDIR):
        return "a file and a folder in the archive have the same name"
    return f"the file system refused the name ({exc.strerror or exc})"


def _write_failed(archive: Path, target: Path, exc: OSError) -> UserError:
    return UserError(
        f"Could not write {target} while unpacking {archive.name}: {exc.strerror or exc}.",
        hint="Check the free space and permissions of the destination folder.",
    )
