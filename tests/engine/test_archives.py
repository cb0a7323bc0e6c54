"""extract_archive: every hostile member is skipped or refused, and nothing lands outside dest."""

from __future__ import annotations

import io
import itertools
import os
import stat
import struct
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnn_lab.engine.data import archives
from cnn_lab.engine.data.archives import (
    ARCHIVE_SUFFIXES,
    ArchiveLimits,
    Cancelled,
    Extracted,
    extract_archive,
    is_archive,
)
from cnn_lab.engine.errors import Cancelled as EngineCancelled
from cnn_lab.engine.errors import UserError


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Path]:
    """A folder holding the archive and dest; asserts at the end that nothing escaped.

    Everything the tests create lives under ``tmp_path/box``; after the test, the only new
    paths anywhere under tmp_path (and in the shared /tmp escape targets) must be inside
    ``box/dest`` or be the archives themselves.
    """
    box = tmp_path / "box"
    box.mkdir()
    before = set(tmp_path.rglob("*"))
    escape_targets = [Path("/tmp/cnn-lab-evil.txt"), Path("/tmp/x")]
    existed = {p: p.exists() for p in escape_targets}
    yield box
    after = set(tmp_path.rglob("*"))
    dest = box / "dest"
    for path in after - before:
        inside_dest = path == dest or dest in path.parents
        is_input = path.parent == box and path.name.startswith("in")
        assert inside_dest or is_input, f"written outside dest: {path}"
    for path, did_exist in existed.items():
        assert path.exists() == did_exist, f"escaped to {path}"


def files_under(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def make_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return path


def add_tar_file(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def add_tar_special(tf: tarfile.TarFile, name: str, kind: bytes, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    tf.addfile(info)


# ------------------------------------------------------------------------------ detection


def test_suffixes() -> None:
    for suffix in (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"):
        assert suffix in ARCHIVE_SUFFIXES


def test_is_archive_by_content(sandbox: Path) -> None:
    zipped = make_zip(sandbox / "in-data.bin", {"a.txt": b"a"})
    tarred = sandbox / "in-images"
    with tarfile.open(tarred, "w:gz") as tf:
        add_tar_file(tf, "a.txt", b"a")
    fake = sandbox / "in-fake.zip"
    fake.write_bytes(b"\xff\xd8\xff\xe0 not a zip at all" * 50)
    empty = sandbox / "in-empty.tar"
    empty.write_bytes(b"")
    assert is_archive(zipped) and is_archive(tarred)
    assert not is_archive(fake)
    assert not is_archive(empty)
    assert not is_archive(sandbox / "in-missing.zip")
    assert not is_archive(sandbox)


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_every_tar_compression(sandbox: Path, mode: str) -> None:
    archive = sandbox / "in.tar"
    with tarfile.open(archive, mode) as tf:
        add_tar_file(tf, "data/cats/1.jpg", b"cat")
        add_tar_file(tf, "data/dogs/1.jpg", b"dog")
    assert is_archive(archive)
    result = extract_archive(archive, sandbox / "dest")
    assert files_under(sandbox / "dest") == ["data/cats/1.jpg", "data/dogs/1.jpg"]
    assert result.root == sandbox / "dest" / "data"
    assert (result.files, result.bytes, result.skipped) == (2, 6, [])


# ------------------------------------------------------------------------------ good archives


def test_zip_with_folders_and_progress(sandbox: Path) -> None:
    archive = make_zip(
        sandbox / "in.zip",
        {"set/": b"", "set/a/1.png": b"x" * 3000, "set/b/2.png": b"y" * 10, "set/empty/": b""},
    )
    calls: list[tuple[int, int]] = []
    result = extract_archive(archive, sandbox / "dest", progress=lambda d, t: calls.append((d, t)))
    assert isinstance(result, Extracted)
    assert files_under(sandbox / "dest") == ["set/a/1.png", "set/b/2.png"]
    assert (sandbox / "dest/set/empty").is_dir()
    assert (sandbox / "dest/set/a/1.png").read_bytes() == b"x" * 3000
    assert result.root == sandbox / "dest" / "set"
    assert (result.files, result.bytes) == (2, 3010)
    assert calls and calls[-1] == (3010, 3010)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(calls))


def test_root_is_dest_when_several_top_level_entries(sandbox: Path) -> None:
    archive = make_zip(sandbox / "in.zip", {"cats/1.jpg": b"1", "dogs/1.jpg": b"2"})
    assert extract_archive(archive, sandbox / "dest").root == sandbox / "dest"


def test_root_is_dest_when_a_file_sits_at_the_top(sandbox: Path) -> None:
    archive = make_zip(sandbox / "in.zip", {"set/1.jpg": b"1", "labels.csv": b"2"})
    assert extract_archive(archive, sandbox / "dest").root == sandbox / "dest"


def test_macos_junk_is_skipped_with_a_reason_and_ignored_for_root(sandbox: Path) -> None:
    archive = make_zip(
        sandbox / "in.zip",
        {
            "set/a.jpg": b"1",
            "__MACOSX/set/._a.jpg": b"junk",
            "set/._a.jpg": b"junk",
            "set/.DS_Store": b"junk",
        },
    )
    result = extract_archive(archive, sandbox / "dest")
    assert files_under(sandbox / "dest") == ["set/a.jpg"]
    assert result.root == sandbox / "dest" / "set"
    assert len(result.skipped) == 3
    assert all("macOS" in reason for _, reason in result.skipped)


def test_backslash_names_are_folders_not_escapes(sandbox: Path) -> None:
    archive = make_zip(sandbox / "in.zip", {"set\\cats\\1.jpg": b"1"})
    extract_archive(archive, sandbox / "dest")
    assert files_under(sandbox / "dest") == ["set/cats/1.jpg"]


def test_existing_files_are_never_overwritten(sandbox: Path) -> None:
    dest = sandbox / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_bytes(b"mine")
    archive = make_zip(sandbox / "in.zip", {"keep.txt": b"theirs", "new.txt": b"n"})
    result = extract_archive(archive, dest)
    assert (dest / "keep.txt").read_bytes() == b"mine"
    assert result.files == 1
    assert [name for name, _ in result.skipped] == ["keep.txt"]
    assert "already exists" in result.skipped[0][1]


def test_duplicate_names_keep_the_first(sandbox: Path) -> None:
    archive = sandbox / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("a.txt", b"first")
        zf.writestr("a.txt", b"second")
    result = extract_archive(archive, sandbox / "dest")
    assert (sandbox / "dest/a.txt").read_bytes() == b"first"
    assert result.skipped == [("a.txt", "duplicate entry; the first copy was kept")]


def test_a_file_and_a_folder_with_one_name(sandbox: Path) -> None:
    archive = make_zip(sandbox / "in.zip", {"a": b"file", "a/b.txt": b"inside"})
    result = extract_archive(archive, sandbox / "dest")
    assert files_under(sandbox / "dest") == ["a"]
    assert result.skipped and result.skipped[0][0] == "a/b.txt"


# ------------------------------------------------------------------------------ hostile names


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../cnn-lab-evil.txt", "'..'"),
        ("set/../../cnn-lab-evil.txt", "'..'"),
        ("/tmp/x", "absolute path"),
        ("//server/share/x", "absolute path"),
        ("C:\\cnn-lab-evil.txt", "drive letter"),
        ("c:/cnn-lab-evil.txt", "drive letter"),
        ("\\tmp\\x", "absolute path"),
        ("..\\cnn-lab-evil.txt", "'..'"),
    ],
)
def test_zip_names_that_escape(sandbox: Path, name: str, reason: str) -> None:
    archive = make_zip(sandbox / "in.zip", {name: b"evil", "ok.txt": b"ok"})
    result = extract_archive(archive, sandbox / "dest")
    assert files_under(sandbox / "dest") == ["ok.txt"]
    assert len(result.skipped) == 1
    assert result.skipped[0][0] == name and reason in result.skipped[0][1]


@pytest.mark.parametrize("name", ["../cnn-lab-evil.txt", "/tmp/x", "a/../../cnn-lab-evil.txt"])
def test_tar_names_that_escape(sandbox: Path, name: str) -> None:
    archive = sandbox / "in.tar"
    with tarfile.open(archive, "w") as tf:
        add_tar_file(tf, name, b"evil")
        add_tar_file(tf, "ok.txt", b"ok")
    result = extract_archive(archive, sandbox / "dest")
    assert files_under(sandbox / "dest") == ["ok.txt"]
    assert [n for n, _ in result.skipped] == [name]


def test_zip_unix_symlink_member_is_skipped(sandbox: Path) -> None:
    archive = sandbox / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/tmp")
        zf.writestr("link/cnn-lab-evil.txt", b"evil")
    result = extract_archive(archive, sandbox / "dest")
    assert not (sandbox / "dest/link").is_symlink()
    assert ("link", "symbolic link; only files and folders are unpacked") in result.skipped
    # The later member becomes an ordinary file in an ordinary folder inside dest.
    assert files_under(sandbox / "dest") == ["link/cnn-lab-evil.txt"]


def test_zip_fifo_and_device_attributes_are_skipped(sandbox: Path) -> None:
    archive = sandbox / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, mode in (("fifo", stat.S_IFIFO), ("dev", stat.S_IFCHR), ("sock", stat.S_IFSOCK)):
            info = zipfile.ZipInfo(name)
            info.external_attr = (mode | 0o644) << 16
            zf.writestr(info, b"")
    result = extract_archive(archive, sandbox / "dest")
    assert files_under(sandbox / "dest") == []
    reasons = dict(result.skipped)
    assert "named pipe" in reasons["fifo"]
    assert "device file" in reasons["dev"]
    assert "socket" in reasons["sock"]


def test_tar_links_devices_and_fifos_are_skipped(sandbox: Path) -> None:
    archive = sandbox / "in.tar"
    with tarfile.open(archive, "w") as tf:
        add_tar_file(tf, "set/real.txt", b"real")
        add_tar_special(tf, "set/sym", tarfile.SYMTYPE, "/tmp")
        add_tar_special(tf, "set/hard", tarfile.LNKTYPE, "set/real.txt")
        add_tar_special(tf, "set/escape", tarfile.LNKTYPE, "/etc/passwd")
        add_tar_special(tf, "set/chr", tarfile.CHRTYPE)
        add_tar_special(tf, "set/blk", tarfile.BLKTYPE)
        add_tar_special(tf, "set/fifo", tarfile.FIFOTYPE)
        add_tar_file(tf, "set/sym/cnn-lab-evil.txt", b"through the link?")
    result = extract_archive(archive, sandbox / "dest")
    reasons = dict(result.skipped)
    assert reasons["set/sym"].startswith("symbolic link")
    assert reasons["set/hard"].startswith("hard link")
    assert reasons["set/escape"].startswith("hard link")
    assert reasons["set/chr"].startswith("device file")
    assert reasons["set/blk"].startswith("device file")
    assert reasons["set/fifo"].startswith("named pipe")
    assert files_under(sandbox / "dest") == ["set/real.txt", "set/sym/cnn-lab-evil.txt"]
    assert not any(p.is_symlink() for p in (sandbox / "dest").rglob("*"))
    assert result.root == sandbox / "dest" / "set"


def test_existing_symlink_in_dest_is_not_written_through(sandbox: Path) -> None:
    outside = sandbox / "in-outside"
    outside.mkdir()
    dest = sandbox / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "sub")
    archive = make_zip(sandbox / "in.zip", {"sub/evil.txt": b"evil"})
    result = extract_archive(archive, dest)
    assert list(outside.iterdir()) == []
    assert result.files == 0 and "outside" in result.skipped[0][1]


# ------------------------------------------------------------------------------ limits


def test_zip_bomb_ratio_is_refused_before_writing(sandbox: Path) -> None:
    archive = make_zip(sandbox / "in.zip", {"ok.txt": b"fine", "bomb.bin": bytes(4 * 1024**2)})
    with pytest.raises(UserError, match="zip bomb") as caught:
        extract_archive(archive, sandbox / "dest")
    assert "exceeds the limit of 200 times" in caught.value.message
    assert not (sandbox / "dest").exists()


def test_small_highly_compressible_files_are_fine(sandbox: Path) -> None:
    archive = make_zip(sandbox / "in.zip", {"blank.bmp": bytes(200_000)})
    assert extract_archive(archive, sandbox / "dest").files == 1


def test_ratio_is_not_checked_for_stored_members(sandbox: Path) -> None:
    archive = make_zip(sandbox / "in.zip", {"big": bytes(2 * 1024**2)}, zipfile.ZIP_STORED)
    assert extract_archive(archive, sandbox / "dest").files == 1


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_total_size_cap(sandbox: Path, kind: str) -> None:
    members = {f"set/{i}.bin": bytes([i]) * 400 for i in range(5)}
    archive = sandbox / f"in.{kind}"
    if kind == "zip":
        make_zip(archive, members)
    else:
        with tarfile.open(archive, "w:gz") as tf:
            for name, data in members.items():
                add_tar_file(tf, name, data)
    dest = sandbox / "dest"
    dest.mkdir()
    with pytest.raises(UserError, match="exceeds the limit") as caught:
        extract_archive(archive, dest, ArchiveLimits(max_total_bytes=1000))
    assert "would unpack to more than" in caught.value.message
    assert caught.value.hint
    assert files_under(dest) == [] and list(dest.iterdir()) == []


def test_member_size_cap(sandbox: Path) -> None:
    archive = make_zip(sandbox / "in.zip", {"small": b"s", "big": bytes(5000)})
    with pytest.raises(UserError, match="per file"):
        extract_archive(archive, sandbox / "dest", ArchiveLimits(max_member_bytes=4096))
    assert not (sandbox / "dest").exists()


def test_file_count_cap(sandbox: Path) -> None:
    archive = make_zip(sandbox / "in.zip", {f"{i}.txt": b"x" for i in range(11)})
    with pytest.raises(UserError, match="more than 10 files"):
        extract_archive(archive, sandbox / "dest", ArchiveLimits(max_files=10))
    assert not (sandbox / "dest").exists()
    assert extract_archive(archive, sandbox / "dest", ArchiveLimits(max_files=11)).files == 11


def test_header_bomb_of_skipped_entries_is_capped(sandbox: Path) -> None:
    archive = sandbox / "in.tar"
    with tarfile.open(archive, "w") as tf:
        for i in range(10_030):
            add_tar_special(tf, f"l{i}", tarfile.SYMTYPE, "x")
    with pytest.raises(UserError, match="more than 10 files"):
        extract_archive(archive, sandbox / "dest", ArchiveLimits(max_files=10))


def test_lying_zip_central_directory_is_caught(sandbox: Path) -> None:
    # Rewrite the central directory so it declares 10 bytes for a 50,000-byte member.
    archive = make_zip(sandbox / "in.zip", {"ok.txt": b"ok", "liar.bin": b"L" * 50_000})
    data = bytearray(archive.read_bytes())
    central = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)  # liar's record
    struct.pack_into("<I", data, central + 24, 10)  # uncompressed size field
    archive.write_bytes(bytes(data))
    with pytest.raises(UserError, match="damaged") as caught:
        extract_archive(archive, sandbox / "dest")
    assert "liar.bin" in caught.value.message or "CRC" in caught.value.message
    assert files_under(sandbox / "dest") == []


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_bytes_are_counted_while_streaming(
    sandbox: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member producing more than it declared is stopped before its extra bytes are written.

    The declared sizes are made to lie (the planning check then passes), so only the
    streaming count stands between the archive and the disk.
    """
    archive = sandbox / f"in.{kind}"
    payload = b"z" * 300_000
    if kind == "zip":
        make_zip(archive, {"a.txt": b"fine", "liar.bin": payload}, zipfile.ZIP_STORED)
    else:
        with tarfile.open(archive, "w") as tf:
            add_tar_file(tf, "a.txt", b"fine")
            add_tar_file(tf, "liar.bin", payload)
    reader_class = archives._ZipReader if kind == "zip" else archives._TarReader
    honest = reader_class.members

    def lying(self: archives._Reader) -> Iterator[archives._Member]:
        for member in honest(self):  # type: ignore[arg-type]
            if member.name == "liar.bin":
                member = archives._Member(member.name, "file", 100, 100, member.handle)
            yield member

    monkeypatch.setattr(reader_class, "members", lying)
    with pytest.raises(UserError, match="declares 100 bytes but holds more"):
        extract_archive(archive, sandbox / "dest", ArchiveLimits(max_total_bytes=1000))
    assert files_under(sandbox / "dest") == []


def test_total_cap_while_streaming(sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_zip(sandbox / "in.zip", {f"{i}.bin": bytes(600) for i in range(3)})
    monkeypatch.setattr(archives, "_too_big", lambda *a: UserError("planned limit bypassed"))
    real_plan = archives._plan

    def plan_without_caps(*args: object) -> archives._Plan:
        reader, archive_path, _limits, should_stop = args
        return real_plan(reader, archive_path, ArchiveLimits(), should_stop)  # type: ignore[arg-type]

    monkeypatch.setattr(archives, "_plan", plan_without_caps)
    with pytest.raises(UserError, match="planned limit bypassed"):
        extract_archive(archive, sandbox / "dest", ArchiveLimits(max_total_bytes=1000))
    assert files_under(sandbox / "dest") == []


def test_tar_header_larger_than_data_is_damaged(sandbox: Path) -> None:
    info = tarfile.TarInfo("big.bin")
    info.size = 5000
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    archive = sandbox / "in.tar"
    good = io.BytesIO()
    with tarfile.open(fileobj=good, mode="w") as tf:
        add_tar_file(tf, "first.txt", b"first")
    first_member = good.getvalue()[:1024]  # header + one data block, no end marker
    archive.write_bytes(first_member + header + b"only a little data")
    with pytest.raises(UserError, match="damaged"):
        extract_archive(archive, sandbox / "dest")
    assert files_under(sandbox / "dest") == []


def test_tar_header_smaller_than_data_writes_only_what_it_declares(sandbox: Path) -> None:
    info = tarfile.TarInfo("small.bin")
    info.size = 4
    block = info.tobuf(format=tarfile.GNU_FORMAT) + (b"ABCD" + b"garbage!" * 100).ljust(1024)
    archive = sandbox / "in.tar"
    archive.write_bytes(block + bytes(1024))
    result = extract_archive(archive, sandbox / "dest")
    assert (sandbox / "dest/small.bin").read_bytes() == b"ABCD"
    assert result.bytes == 4


# ------------------------------------------------------------------------------ damage


@pytest.mark.parametrize("kind", ["zip", "targz", "text", "empty", "truncated_zip"])
def test_corrupt_archives(sandbox: Path, kind: str) -> None:
    archive = sandbox / "in.archive"
    if kind == "zip":
        make_zip(archive, {"a.txt": b"a" * 5000})
        data = bytearray(archive.read_bytes())
        data[40:60] = b"\xff" * 20  # inside the compressed data
        archive.write_bytes(bytes(data))
    elif kind == "targz":
        with tarfile.open(archive, "w:gz") as tf:
            add_tar_file(tf, "a.txt", os.urandom(50_000))
        archive.write_bytes(archive.read_bytes()[:20_000])
    elif kind == "text":
        archive.write_text("not an archive\n" * 100)
    elif kind == "empty":
        archive.write_bytes(b"")
    else:
        make_zip(archive, {"a.txt": b"a" * 5000})
        archive.write_bytes(archive.read_bytes()[:-30])
    with pytest.raises(UserError) as caught:
        extract_archive(archive, sandbox / "dest")
    assert "is damaged or is not a zip or tar archive" in caught.value.message
    assert caught.value.hint
    assert files_under(sandbox / "dest") == []


def test_damage_after_some_files_removes_them(sandbox: Path) -> None:
    archive = make_zip(
        sandbox / "in.zip", {"set/a/1.txt": b"1" * 100, "set/b/2.txt": os.urandom(5000)}
    )
    data = bytearray(archive.read_bytes())
    second = data.index(b"PK\x03\x04", 4)
    data[second + 60 : second + 80] = b"\x00" * 20
    archive.write_bytes(bytes(data))
    dest = sandbox / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_bytes(b"mine")
    with pytest.raises(UserError, match="damaged"):
        extract_archive(archive, dest)
    assert files_under(dest) == ["keep.txt"]  # ours removed, folders too; theirs kept
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_missing_archive(sandbox: Path) -> None:
    with pytest.raises(UserError, match="Could not read the archive"):
        extract_archive(sandbox / "in-missing.zip", sandbox / "dest")


def test_encrypted_member_is_skipped(sandbox: Path) -> None:
    archive = make_zip(sandbox / "in.zip", {"secret.txt": b"s", "open.txt": b"o"})
    data = bytearray(archive.read_bytes())
    # Set the "encrypted" flag bit on secret.txt's central directory record.
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 0x1
    archive.write_bytes(bytes(data))
    result = extract_archive(archive, sandbox / "dest")
    assert files_under(sandbox / "dest") == ["open.txt"]
    assert result.skipped == [("secret.txt", "encrypted (password-protected)")]


# ------------------------------------------------------------------------------ cancel


def test_cancel_is_the_engine_cancel() -> None:
    assert Cancelled is EngineCancelled


@pytest.mark.parametrize("after_calls", [1, 3])
def test_cancel_cleans_up(sandbox: Path, after_calls: int) -> None:
    archive = make_zip(sandbox / "in.zip", {f"set/{i}/x.bin": bytes(50) for i in range(10)})
    calls = 0

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > after_calls

    with pytest.raises(Cancelled):
        extract_archive(archive, sandbox / "dest", should_stop=should_stop)
    assert not (sandbox / "dest").exists()


def test_cancel_keeps_a_dest_that_existed(sandbox: Path) -> None:
    archive = make_zip(sandbox / "in.zip", {f"{i}.bin": bytes(50) for i in range(5)})
    dest = sandbox / "dest"
    dest.mkdir()
    with pytest.raises(Cancelled):
        extract_archive(archive, dest, should_stop=lambda: True)
    assert dest.is_dir() and list(dest.iterdir()) == []


def test_error_in_progress_callback_cleans_up(sandbox: Path) -> None:
    archive = make_zip(sandbox / "in.zip", {"a.bin": b"a", "b.bin": b"b"})

    def progress(done: int, total: int) -> None:
        raise RuntimeError("listener broke")

    with pytest.raises(RuntimeError):
        extract_archive(archive, sandbox / "dest", progress=progress)
    assert not (sandbox / "dest").exists()
