"""A CSV inside an archive may only name files inside that archive.

An archive is untrusted input, and so is the CSV in it: a row naming ``../x.png`` or an
absolute path would otherwise pull any image on the disk into the dataset. Each case builds a
real zip and tar, with a real image placed outside where such a row points.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from cnn_lab.engine.data.prepare import prepare_dataset
from cnn_lab.engine.errors import DataError
from cnn_lab.engine.specs import DatasetSpec


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path / "cache"))


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "PNG")
    return buffer.getvalue()


def build(archive: Path, members: dict[str, bytes]) -> Path:
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive, "w") as zipped:
            for name, data in members.items():
                zipped.writestr(name, data)
    else:
        with tarfile.open(archive, "w:gz") as tarred:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tarred.addfile(info, io.BytesIO(data))
    return archive


def good_members(extra_row: str = "") -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    rows = ["path,label"]
    for i in range(3):
        members[f"pics/r{i}.png"] = png((255, i, 0))
        members[f"pics/b{i}.png"] = png((0, i, 255))
        rows += [f"pics/r{i}.png,red", f"pics/b{i}.png,blue"]
    if extra_row:
        rows.append(extra_row)
    members["labels.csv"] = "\n".join(rows).encode()
    return members


def prepare(source: Path):  # type: ignore[no-untyped-def]
    return prepare_dataset(DatasetSpec(source=str(source)))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A real image outside the archive, where the bad rows point."""
    path = tmp_path / "outside.png"
    path.write_bytes(png((0, 255, 0)))
    return path


def bad_paths(outside: Path) -> list[tuple[str, str]]:
    climb = "../" * 40 + str(outside).lstrip("/")  # resolves to the real file from anywhere
    return [
        ("../outside.png", "climbs out with '..'"),
        (climb, "climbs out with '..'"),
        ("pics/../../outside.png", "climbs out with '..'"),
        ("/etc/x.png", "is an absolute path"),
        (str(outside), "is an absolute path"),
        ("..\\outside.png", "climbs out with '..'"),
        ("C:\\outside.png", "absolute Windows path"),
    ]


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_rows_leaving_the_archive_refuse_the_import(
    tmp_path: Path, outside: Path, suffix: str
) -> None:
    for number, (bad, why) in enumerate(bad_paths(outside)):
        archive = build(tmp_path / f"bad{number}{suffix}", good_members(f"{bad},green"))
        with pytest.raises(DataError) as caught:
            prepare(archive)
        message = str(caught.value)
        assert "labels.csv, line 8" in message, message  # header is line 1, 6 good rows
        assert repr(bad) in message and why in message, message
        assert "may only name files inside that archive" in message, message
        assert caught.value.hint  # says what to do


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_a_normal_archive_csv_still_imports(tmp_path: Path, suffix: str) -> None:
    members = good_members("./pics/r0.png,red")  # "./" stays inside: allowed
    report = prepare(build(tmp_path / f"good{suffix}", members)).report
    assert report.kind == "archive"
    assert report.classes == {"blue": 3, "red": 4}


def test_a_missing_file_inside_the_archive_is_only_skipped(tmp_path: Path) -> None:
    report = prepare(build(tmp_path / "gap.zip", good_members("pics/none.png,red"))).report
    assert report.classes == {"blue": 3, "red": 3}
    assert any(s.path == "pics/none.png" and "not found" in s.reason for s in report.skipped)
