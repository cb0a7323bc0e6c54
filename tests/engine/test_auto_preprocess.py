"""Issue 19: "auto" image size and channels are chosen from the images' headers, with a reason.

Small images of one size keep it, greyscale trains as one channel, anything else gets a size
from the distribution (never above the old 64 px default, so auto is never slower), an
explicit size or channel count always wins, and a trained run is rebuilt at what it trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_lab.engine.data.auto_preprocess import (
    AUTO_MAX,
    SAMPLE,
    as_trained,
    choose_for_arrays,
    choose_for_files,
    legacy_input,
)
from cnn_lab.engine.data.prepare import prepare_dataset
from cnn_lab.engine.data.sources import list_source
from cnn_lab.engine.specs import DatasetSpec, RunSpec
from tests.engine.image_folders import write_class_folder


def write_grey_folder(root: Path, per_class: int = 12, side: int = 28) -> Path:
    """Three classes of distinct greyscale (mode L) PNGs: a bright bar in a class's place."""
    rng = np.random.default_rng(1)
    for c, name in enumerate(("left", "middle", "right")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (side, side), dtype=np.uint8)
            start = c * side // 3
            pixels[:, start : start + side // 3] += 150
            Image.fromarray(pixels, mode="L").save(root / name / f"{i:03d}.png")
    return root


def write_photo_folder(root: Path) -> Path:
    """Colour JPEGs of many sizes, as phone photos and web images come."""
    rng = np.random.default_rng(2)
    sizes = [(640, 480), (480, 640), (800, 600), (300, 200), (1024, 768), (500, 375)]
    for c, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(15):
            w, h = sizes[(i + c) % len(sizes)]
            pixels = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
            image = Image.fromarray(pixels).resize((w, h))
            image.save(root / name / f"{i:03d}.jpg", quality=80)
    return root


def choose(source: Path, **fields: object):  # type: ignore[no-untyped-def]
    spec = DatasetSpec(source=str(source), **fields)
    return choose_for_files(list_source(spec.source), spec)


def test_small_greyscale_images_of_one_size_keep_it_as_one_channel(tmp_path: Path) -> None:
    folder = write_grey_folder(tmp_path / "digits")
    choice = choose(folder)
    assert (choice.prep.size, choice.prep.channels) == (28, 1)
    assert "28×28" in choice.reason and "greyscale" in choice.reason
    assert "auto" in choice.reason and "own size" in choice.reason

    prepared = prepare_dataset(DatasetSpec(source=str(folder)))
    assert prepared.images.shape == (36, 28, 28, 1)
    report = prepared.report
    assert (report.image_size, report.channels) == (28, 1)
    assert report.preprocess_reason == choice.reason


def test_colour_images_of_one_small_size_keep_it_with_three_channels(tmp_path: Path) -> None:
    folder = write_class_folder(tmp_path / "d", size=(40, 30))  # RGB, not square
    choice = choose(folder)
    assert (choice.prep.size, choice.prep.channels) == (40, 3)
    assert "40×30" in choice.reason and "longer side" in choice.reason
    assert "colour" in choice.reason


def test_photos_of_many_sizes_get_a_size_from_the_distribution(tmp_path: Path) -> None:
    folder = write_photo_folder(tmp_path / "photos")
    choice = choose(folder)
    assert (choice.prep.size, choice.prep.channels) == (AUTO_MAX, 3)
    assert "sizes vary" in choice.reason and "median" in choice.reason
    assert "set a size to train larger" in choice.reason


def test_small_images_of_many_sizes_get_the_median_shorter_side(tmp_path: Path) -> None:
    for i, size in enumerate([(20, 30), (24, 24), (30, 40), (36, 50), (26, 26)] * 4):
        write_class_folder(tmp_path / "mixed", {"a": 1, "b": 1}, size=size, seed=i)
        for path in (tmp_path / "mixed").rglob("*_000.png"):
            path.rename(path.with_name(f"{i:03d}-{path.name}"))
    choice = choose(tmp_path / "mixed")
    # Shorter sides 20, 24, 26, 30 and 36, eight of each: the lower median is 26.
    assert choice.prep.size == 26
    assert "median shorter side" in choice.reason


def test_an_explicit_size_or_channel_count_always_wins(tmp_path: Path) -> None:
    folder = write_grey_folder(tmp_path / "digits")
    both = choose(folder, image_size=48, channels=3)
    assert (both.prep.size, both.prep.channels) == (48, 3)
    assert both.reason == "48 px, 3 channels, as set."
    size_only = choose(folder, image_size=16)
    assert (size_only.prep.size, size_only.prep.channels) == (16, 1)
    assert "as set" in size_only.reason and "greyscale" in size_only.reason
    channels_only = choose(folder, channels=3)
    assert (channels_only.prep.size, channels_only.prep.channels) == (28, 3)
    prepared = prepare_dataset(DatasetSpec(source=str(folder), channels=3))
    assert prepared.images.shape[1:] == (28, 28, 3)


def test_the_choice_is_deterministic_and_reads_only_a_sample(tmp_path: Path) -> None:
    folder = write_grey_folder(tmp_path / "many", per_class=120)  # 360 files > SAMPLE
    # A few colour images among them: whether the sample sees them must not vary by run.
    for i in range(30):
        Image.new("RGB", (28, 28), (200, 10, 10)).save(folder / "left" / f"red{i}.png")
    spec = DatasetSpec(source=str(folder))
    first = choose_for_files(list_source(spec.source), spec)
    for seed in (0, 7):  # the split seed moves the splits, never the size
        again = choose_for_files(
            list_source(spec.source), spec.model_copy(update={"split_seed": seed})
        )
        assert again == first
    assert f"{SAMPLE:,} sampled images (of 390)" in first.reason
    assert first.prep.channels == 3 and "in colour" in first.reason


def test_a_corrupt_header_does_not_stop_the_choice(tmp_path: Path) -> None:
    folder = write_grey_folder(tmp_path / "digits", per_class=4)
    (folder / "left" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (folder / "middle" / "empty.png").write_bytes(b"")
    choice = choose(folder)
    assert (choice.prep.size, choice.prep.channels) == (28, 1)
    assert "2 unreadable" in choice.reason
    prepared = prepare_dataset(DatasetSpec(source=str(folder)))
    assert {Path(s.path).name for s in prepared.report.skipped} == {"broken.png", "empty.png"}


def test_a_folder_of_nothing_readable_falls_back_to_the_default(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / "bad" / name).mkdir(parents=True)
        (tmp_path / "bad" / name / "x.png").write_bytes(b"junk")
    choice = choose(tmp_path / "bad")
    assert (choice.prep.size, choice.prep.channels) == (AUTO_MAX, 3)
    assert "no image header could be read" in choice.reason


def test_arrays_say_why_they_keep_their_size_and_grey_samples_take_one_channel() -> None:
    digits = prepare_dataset(DatasetSpec(source="sample:digits"))
    assert digits.images.shape[1:] == (28, 28, 1)
    assert "28×28" in digits.report.preprocess_reason
    assert "greyscale" in digits.report.preprocess_reason
    shapes = list_source("sample:shapes")
    choice = choose_for_arrays(shapes, DatasetSpec(source="sample:shapes"))  # type: ignore[arg-type]
    assert (choice.prep.size, choice.prep.channels) == (32, 3)
    assert "own 32×32" in choice.reason and "colour" in choice.reason


def test_a_stored_spec_naming_three_channels_hashes_as_before() -> None:
    # Specs stored before auto existed all wrote "channels": 3. Their hash must not move,
    # and a spec that leaves channels to auto is a different spec.
    stored = json.loads(RunSpec().to_json())
    stored["dataset"]["channels"] = 3
    old = RunSpec.from_dict(stored)
    assert old.dataset.channels == 3
    assert old.spec_hash() == RunSpec.from_json(old.to_json()).spec_hash()
    assert old.spec_hash() != RunSpec().spec_hash()
    assert RunSpec().dataset.channels is None


def test_as_trained_pins_a_recorded_shape_and_legacy_file_runs_to_64() -> None:
    auto = DatasetSpec(source="/data/digits")
    pinned = as_trained(auto, (1, 28, 28))
    assert (pinned.image_size, pinned.channels) == (28, 1)
    assert as_trained(auto, None) is auto
    legacy = DatasetSpec(source="/data/photos", channels=3)
    assert legacy_input(legacy) == (3, 64, 64)
    assert legacy_input(DatasetSpec(source="sample:digits", channels=3)) is None
    assert legacy_input(DatasetSpec(source="/data/photos", channels=3, image_size=32)) is None


def test_a_resumed_run_trains_at_what_it_recorded() -> None:
    from types import SimpleNamespace

    from cnn_lab.engine.jobs.job import _as_recorded

    spec = RunSpec.from_dict({"dataset": {"source": "/data/digits"}})
    recorded = _as_recorded(spec, SimpleNamespace(summary={"input_shape": [1, 28, 28]}))  # type: ignore[arg-type]
    assert (recorded.dataset.image_size, recorded.dataset.channels) == (28, 1)
    assert spec.dataset.image_size is None  # the stored spec keeps what was asked
    # A file run recorded before auto chose from the data trained at 64 px.
    legacy = RunSpec.from_dict({"dataset": {"source": "/data/photos", "channels": 3}})
    resumed = _as_recorded(legacy, SimpleNamespace(summary={}))  # type: ignore[arg-type]
    assert (resumed.dataset.image_size, resumed.dataset.channels) == (64, 3)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_predict_on_an_auto_run_uses_the_recorded_size_and_channels(tmp_path: Path) -> None:
    from cnn_lab.engine.evaluation.predict import Predictor
    from cnn_lab.engine.jobs.job import run_job
    from cnn_lab.engine.store import RunStore
    from cnn_lab.engine.store import status as st

    folder = write_grey_folder(tmp_path / "digits", per_class=10)
    spec = RunSpec.from_dict(
        {
            "dataset": {"source": str(folder)},
            "architecture": {"preset": "small_cnn", "width": 0.25},
            "train": {"epochs": 1, "batch_size": 8, "device": "cpu"},
        }
    )
    db = tmp_path / "runs.sqlite"
    record = run_job(spec, db, sample_system=False)
    assert record is not None and record.status == st.COMPLETED, record and record.reason
    assert record.summary["input_shape"] == [1, 28, 28]
    assert "greyscale" in record.summary["preprocess"]

    # The folder changes so that auto would now choose colour at another size: what the run
    # trained on must still be what predict feeds it (and its normalisation), not today's
    # auto choice.
    for i in range(10):
        Image.new("RGB", (40, 40), (i * 20, 50, 90)).save(folder / "left" / f"new{i}.png")
    assert choose(folder).prep.channels == 3
    with RunStore.open(db) as store:
        predictor = Predictor.from_run(store, record.id)
    assert predictor.pixels(folder / "middle" / "000.png").shape == (28, 28, 1)
    assert predictor.mean.shape[1] == 1
    (result,) = predictor.predict([folder / "right" / "001.png"], top=2)
    assert not result.error and len(result.top) == 2
