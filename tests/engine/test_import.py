"""Importing every kind of source: what is kept, what is skipped and why, and the cache."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_lab.engine.data.prepare import prepare_dataset
from cnn_lab.engine.data.sources import source_kind
from cnn_lab.engine.errors import Cancelled, DataError
from cnn_lab.engine.specs import DatasetSpec
from tests.engine.image_folders import write_class_folder


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CNN_LAB_CACHE", str(cache))
    return cache


def prepare(source: Path | str, **fields: object):  # type: ignore[no-untyped-def]
    return prepare_dataset(DatasetSpec(source=str(source), **fields))  # type: ignore[arg-type]


def reasons(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {s.path: s.reason for s in report.skipped}


def codes(report) -> set[str]:  # type: ignore[no-untyped-def]
    return {w.code for w in report.warnings}


def test_a_messy_folder_is_imported_with_every_problem_named(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "photos")
    (root / "empty_class").mkdir()
    (root / "red" / "zero.jpg").write_bytes(b"")
    (root / "red" / "words.png").write_text("not a picture")
    (root / "green" / "notes.txt").write_text("hello")
    (root / "stray.png").write_bytes((root / "red" / "red_000.png").read_bytes())
    good = (root / "blue" / "blue_000.png").read_bytes()
    (root / "blue" / "cut.png").write_bytes(good[: len(good) // 2])
    (root / "blue" / ".hidden.png").write_bytes(good)
    shutil.copy(root / "green" / "green_001.png", root / "green" / "copy_of_1.png")

    prepared = prepare(root)
    report = prepared.report
    assert report.kind == "folder"
    assert report.classes == {"blue": 12, "empty_class": 0, "green": 13, "red": 12}
    assert report.images == len(prepared) == 37
    assert prepared.classes == ("blue", "green", "red")  # the empty class is left out
    skipped = reasons(report)
    assert skipped["red/zero.jpg"].startswith("empty file")
    assert "not an image" in skipped["red/words.png"]
    assert "truncated" in skipped["blue/cut.png"] or "corrupt" in skipped["blue/cut.png"]
    assert "not an image file type" in skipped["green/notes.txt"]
    assert skipped["stray.png"] == "not inside a class folder"
    assert not any("hidden" in path for path in skipped)  # hidden files are not data
    assert {"empty_classes", "few_images", "exact_duplicates"} <= codes(report)
    assert report.exact_duplicates == [["green/copy_of_1.png", "green/green_001.png"]]
    # Auto keeps small images of one size (40×30) at their longer side, in colour.
    assert prepared.images.shape == (37, 40, 40, 3) and prepared.images.dtype == np.uint8
    assert report.formats == {"PNG": 37} and report.modes == {"RGB": 37}
    assert report.sizes.min_width == 40 and report.sizes.max_height == 30


def test_exact_copies_stay_in_one_split(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "d", {"red": 30, "green": 30})
    for i in range(10):
        shutil.copy(root / "red" / "red_000.png", root / "red" / f"dup_{i}.png")
    prepared = prepare(root)
    group = [i for i, shown in enumerate(prepared.shown) if "dup_" in shown or "red_000" in shown]
    assert len(group) == 11
    for seed in range(5):
        splits = prepared.split(DatasetSpec(source=str(root), split_seed=seed))
        sides = {
            name
            for name, part in (("train", splits.train), ("val", splits.val))
            for i in group
            if i in set(part.tolist())
        }
        assert len(sides) == 1


def test_one_class_and_single_images_block_training(tmp_path: Path) -> None:
    one = write_class_folder(tmp_path / "one", {"red": 10})
    report = prepare(one).report
    assert "one_class" in {b.code for b in report.blockers}
    with pytest.raises(DataError, match="needs two or more"):
        prepare(one).raise_blockers()

    lonely = write_class_folder(tmp_path / "lonely", {"red": 10, "green": 1})
    assert "class_too_small" in {b.code for b in prepare(lonely).report.blockers}


def test_imbalance_is_flagged_with_the_fix(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "d", {"red": 60, "green": 6})
    findings = {w.code: w for w in prepare(root).report.warnings}
    assert "10:1" in findings["imbalance"].message
    assert "weighted" in findings["imbalance"].hint


def test_near_duplicates_are_found_and_grouped(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "d", {"red": 20, "green": 20}, size=(64, 64))
    original = Image.open(root / "green" / "green_005.png")
    original.resize((48, 48)).save(root / "green" / "smaller.jpg", quality=90)
    prepared = prepare(root)
    groups = prepared.report.near_duplicates
    assert ["green/green_005.png", "green/smaller.jpg"] in [sorted(g) for g in groups]
    a, b = prepared.shown.index("green/green_005.png"), prepared.shown.index("green/smaller.jpg")
    assert prepared.groups[a] == prepared.groups[b]


def test_conversions_reach_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "modes"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
    Image.new("L", (20, 20), 128).save(root / "a" / "grey.png")
    Image.new("RGBA", (20, 20), (255, 0, 0, 0)).save(root / "a" / "clear.png")  # transparent
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(root / "b" / "cmyk.jpg")
    wide = np.full((20, 20), 65535, dtype=np.uint16)
    Image.fromarray(wide).save(root / "b" / "sixteen.png")
    prepared = prepare(root, image_size=16)
    by_name = {shown: prepared.images[i] for i, shown in enumerate(prepared.shown)}
    assert np.all(np.abs(by_name["a/grey.png"].astype(int) - 128) <= 1)
    assert np.all(by_name["a/clear.png"] >= 250)  # composited on white, not black
    red = by_name["b/cmyk.jpg"].reshape(-1, 3).mean(0)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    assert np.all(by_name["b/sixteen.png"] >= 254)  # rescaled, not clipped to 255 from 65535
    assert set(prepared.report.modes) >= {"L", "RGBA", "CMYK"}


def test_greyscale_cache_and_resize_policies(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "d", {"red": 4, "green": 4}, size=(60, 20))
    grey = prepare(root, image_size=24, channels=1)
    assert grey.images.shape == (8, 24, 24, 1)
    padded = prepare(root, image_size=24, resize="pad")
    cropped = prepare(root, image_size=24, resize="center_crop")
    assert padded.images.shape == cropped.images.shape == (8, 24, 24, 3)
    assert not np.array_equal(np.asarray(padded.images), np.asarray(cropped.images))


def test_the_cache_is_reused_and_rebuilt_only_for_what_changed(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "d", {"red": 20, "green": 20})
    first = prepare(root).report.cache
    assert (first.decoded, first.reused) == (40, 0)
    second = prepare(root)
    assert (second.report.cache.decoded, second.report.cache.reused) == (0, 40)
    assert second.report.cache.path == first.path

    Image.new("RGB", (40, 30), (1, 2, 3)).save(root / "red" / "new.png")
    os.utime(root / "green" / "green_000.png", ns=(1, 1))  # touched, same bytes
    (root / "red" / "red_003.png").unlink()
    third = prepare(root)
    assert (third.report.cache.decoded, third.report.cache.reused) == (1, 39)
    assert "red/red_003.png" not in third.shown and "red/new.png" in third.shown
    again = prepare(root)
    np.testing.assert_array_equal(np.asarray(third.images), np.asarray(again.images))

    other_size = prepare(root, image_size=32).report.cache
    assert other_size.decoded == 40 and other_size.path != first.path


def test_limit_decodes_only_the_subset(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "d", {"red": 40, "green": 20})
    prepared = prepare(root, limit=30)
    assert prepared.report.cache.decoded == 30
    assert prepared.report.classes == {"green": 10, "red": 20}


def test_cancel_stops_an_import(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "d", {"red": 200, "green": 200})
    calls = []

    def stop_after_listing() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        prepare_dataset(DatasetSpec(source=str(root)), should_stop=stop_after_listing)


def test_csv_with_relative_paths_and_bad_rows(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "imgs", {"red": 5, "green": 5})
    lines = ["filename,label"]
    lines += [f"imgs/red/red_{i:03d}.png,stop" for i in range(5)]
    lines += [f"imgs/green/green_{i:03d}.png,go" for i in range(5)]
    lines += ["imgs/missing.png,go", "just-one-column", ",go"]
    table = tmp_path / "labels.csv"
    table.write_text("\n".join(lines) + "\n")
    assert root.exists()
    prepared = prepare(table)
    report = prepared.report
    assert report.kind == "csv" and report.classes == {"go": 5, "stop": 5}
    skipped = reasons(report)
    assert skipped["imgs/missing.png"] == "file not found"
    assert any("no path and label" in r for r in skipped.values())
    assert any("empty path or label" in r for r in skipped.values())


def test_npz_in_every_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    nchw = rng.random((30, 3, 16, 16)).astype(np.float32)  # PyTorch layout, floats in 0..1
    labels = np.array(["cat", "dog", "eel"] * 10)
    np.savez(tmp_path / "a.npz", x=nchw, y=labels)
    prepared = prepare(tmp_path / "a.npz")
    assert prepared.images.shape == (30, 16, 16, 3)
    assert prepared.report.classes == {"cat": 10, "dog": 10, "eel": 10}
    expected = np.round(np.moveaxis(nchw[0], 0, -1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(prepared.images[0], expected)

    grey = rng.integers(0, 255, (20, 10, 10), dtype=np.uint8)
    np.savez(tmp_path / "b.npz", images=grey, labels=np.arange(20) % 2, classes=["no", "yes"])
    prepared = prepare(tmp_path / "b.npz", channels=1)
    assert prepared.images.shape == (20, 10, 10, 1)
    assert prepared.classes == ("no", "yes")

    np.savez(tmp_path / "bad.npz", pictures=grey)
    with pytest.raises(DataError, match="no images array"):
        prepare(tmp_path / "bad.npz")


def test_zip_and_tar_archives_import_like_folders(tmp_path: Path, _cache: Path) -> None:
    root = write_class_folder(tmp_path / "src" / "dataset", {"red": 6, "green": 6})
    zipped = tmp_path / "data.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for file in sorted(root.rglob("*.png")):
            archive.write(file, file.relative_to(root.parent))
        archive.writestr("../escape.png", (root / "red" / "red_000.png").read_bytes())
        archive.writestr("/abs.png", b"x")

    def outside_cache() -> list[Path]:
        return sorted(p for p in tmp_path.rglob("*") if p != _cache and _cache not in p.parents)

    before = outside_cache()
    prepared = prepare(zipped)
    assert source_kind(str(zipped)) == "archive"
    assert prepared.report.kind == "archive"
    assert prepared.report.classes == {"green": 6, "red": 6}
    skipped = reasons(prepared.report)
    assert any("escape" in path for path in skipped) and any("abs" in p for p in skipped)
    assert outside_cache() == before  # nothing written outside the import folder
    assert not (tmp_path / "escape.png").exists()
    assert prepare(zipped).report.cache.reused == 12  # not unpacked or decoded again

    tarred = tmp_path / "data.tar.gz"
    with tarfile.open(tarred, "w:gz") as archive:
        archive.add(root, arcname="dataset")
        link = tarfile.TarInfo("dataset/red/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    prepared = prepare(tarred)
    assert prepared.report.classes == {"green": 6, "red": 6}
    assert "link" in reasons(prepared.report)["dataset/red/link.png"].lower() or any(
        "link" in r for r in reasons(prepared.report).values()
    )


def test_csv_inside_an_archive(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, "PNG")
    red = buffer.getvalue()
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(buffer, "PNG")
    blue = buffer.getvalue()
    zipped = tmp_path / "table.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        rows = ["path,label"]
        for i in range(4):
            archive.writestr(f"pics/r{i}.png", red[:-12] + bytes([i]) + red[-11:])
            archive.writestr(f"pics/b{i}.png", blue)
            rows += [f"pics/r{i}.png,red", f"pics/b{i}.png,blue"]
        archive.writestr("labels.csv", "\n".join(rows))
    report = prepare(zipped).report
    assert report.classes["blue"] == 4


def test_unknown_sources_are_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no file or folder"):
        prepare(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="cannot read"):
        prepare(tmp_path / "notes.txt")
    with pytest.raises(Exception, match="no built-in sample called"):
        prepare("sample:nope")
