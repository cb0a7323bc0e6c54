"""The Data panel imports planted folders, reports problems, cancels and previews augmentation.

Every wait is on a signal. The folders are small (tens of images) so each import takes well
under a second; the first augmentation preview imports torch in a worker thread.
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, Qt, QThreadPool
from PySide6.QtGui import QImage

from cnn_lab.app.bridge.task import Task
from cnn_lab.app.panels.data_panel import DataPanel
from cnn_lab.app.recent_sources import load_recent_sources
from cnn_lab.app.state import AppState
from cnn_lab.engine.errors import Cancelled, DataError
from tests.app.drops import drag_enter, drop_event, files_mime

IMPORT_MS = 60_000
PREVIEW_MS = 120_000  # the first preview imports torch

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def plant(root: Path, classes: dict[str, tuple[int, int, int]] = COLOURS, n: int = 12) -> Path:
    """Class folders of n 40×30 images each (PNG and JPEG), each with its own white mark."""
    for name, colour in classes.items():
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(n):
            pixels = np.zeros((30, 40, 3), np.uint8) + np.array(colour, np.uint8)
            pixels[(i * 2) % 24 : (i * 2) % 24 + 6, (i * 3) % 32 : (i * 3) % 32 + 8] = 255
            suffix = "png" if i % 2 else "jpg"
            Image.fromarray(pixels).save(folder / f"{name}-{i:02d}.{suffix}")
    return root


def plant_with_problems(root: Path) -> Path:
    plant(root)
    (root / "red" / "zero.jpg").write_bytes(b"")
    (root / "green" / "notes.png").write_text("not a picture at all", encoding="utf-8")
    (root / "empty").mkdir()
    return root


@pytest.fixture
def panel(qtbot, db_path: Path) -> Iterator[DataPanel]:  # type: ignore[no-untyped-def]
    """A Data panel whose start-up import of the built-in sample has finished."""
    state = AppState(db_path)
    panel = DataPanel(state)
    qtbot.addWidget(panel)
    panel.resize(1260, 720)
    with qtbot.waitSignal(panel.import_finished, timeout=IMPORT_MS):
        panel.show()
    yield panel
    panel.cancel()
    assert QThreadPool.globalInstance().waitForDone(30_000)


def images_of(grid) -> list[QImage]:  # type: ignore[no-untyped-def]
    return [pixmap.toImage() for pixmap in grid.pixmaps()]


# ------------------------------------------------------------------------------ start-up


def test_the_sample_loads_on_start(panel: DataPanel) -> None:
    assert panel.report is not None and panel.report.source == "sample:shapes"
    assert panel.report.images > 0 and not panel.report.blockers
    assert panel.import_task is None
    assert panel.grid.rows == len(panel.report.classes)
    assert panel.histogram.heights() == list(panel.report.classes.values())
    assert panel.state.dataset.source == "sample:shapes"
    assert "Imported" in panel.status.text()
    # No augmentation is chosen, so the "after" grid shows the same images without torch.
    assert images_of(panel.augmented_grid) == images_of(panel.grid)
    assert not panel.reroll_button.isEnabled()


# ------------------------------------------------------------------------------ importing


def test_a_folder_with_problems_shows_the_report(qtbot, panel: DataPanel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = plant_with_problems(tmp_path / "colours")
    with qtbot.waitSignal(panel.import_finished, timeout=IMPORT_MS) as got:
        panel.open_source(str(folder))
    report = got.args[0]
    assert panel.report is report and report.images == 36
    assert panel.state.dataset.source == str(folder)
    assert panel.source.currentData() == str(folder)

    # The skipped files, each with its reason, and their count.
    rows = dict(panel.report_view.skipped_rows())
    assert set(rows) == {os.path.join("red", "zero.jpg"), os.path.join("green", "notes.png")}
    assert "empty" in rows[os.path.join("red", "zero.jpg")].lower()
    assert "not an image" in rows[os.path.join("green", "notes.png")].lower()
    assert panel.report_view.skipped_table.isVisibleTo(panel)
    assert "2 files skipped" in panel.report_view.skipped_label.text()

    # The empty class is a warning, not a blocker.
    (empty,) = [f for f in report.warnings if f.code == "empty_classes"]
    assert empty.severity == "warning" and "'empty'" in empty.message
    lines = panel.report_view.finding_lines()
    assert f"Warning: {empty.message} {empty.hint}" in lines
    assert not any(line.startswith("Blocks training:") for line in lines)
    assert html.escape(empty.message) in panel.report_view.findings.text()
    assert "36 images in 3 classes" in panel.report_view.summary.text()

    # One bar per class, as tall as the class is big (the empty class at 0).
    assert panel.histogram.names() == list(report.classes)
    assert dict(zip(panel.histogram.names(), panel.histogram.heights(), strict=True)) == {
        "blue": 12,
        "empty": 0,
        "green": 12,
        "red": 12,
    }
    drawn = panel.histogram.bars.opts["height"]
    for name, height in zip(panel.histogram.names(), drawn, strict=True):
        if report.classes[name]:
            assert height == report.classes[name]

    # Examples of the three classes with images, at the 40 px auto chose (40×30 originals).
    assert panel.grid.rows == 3
    assert {p.width() for p in panel.grid.pixmaps()} == {40 * panel.grid.scale}
    assert str(folder) in load_recent_sources()


def test_the_summary_says_what_auto_chose_and_why(qtbot, panel: DataPanel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "digits"
    for name, column in (("one", 4), ("seven", 16)):
        (folder / name).mkdir(parents=True)
        for i in range(6):
            pixels = np.full((28, 28), 10 * i, np.uint8)
            pixels[:, column : column + 6] = 250
            Image.fromarray(pixels, mode="L").save(folder / name / f"{i}.png")
    assert panel.channels.currentText() == "Auto" and panel.image_size.text() == "auto"
    with qtbot.waitSignal(panel.import_finished, timeout=IMPORT_MS) as got:
        panel.open_source(str(folder))
    assert (got.args[0].image_size, got.args[0].channels) == (28, 1)
    summary = panel.report_view.summary.text()
    assert "Size and channels: 28 px, 1 channel (auto)" in summary
    assert "28×28" in summary and "greyscale" in summary


def test_one_class_is_a_blocker(qtbot, panel: DataPanel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = plant(tmp_path / "lonely", {"only": (10, 120, 200)})
    with qtbot.waitSignal(panel.import_finished, timeout=IMPORT_MS) as got:
        panel.open_source(str(folder))
    assert [b.code for b in got.args[0].blockers] == ["one_class"]
    lines = panel.report_view.finding_lines()
    blocker = got.args[0].blockers[0]
    assert lines[0] == f"Blocks training: {blocker.message} {blocker.hint}"
    shown = panel.report_view.findings.text()
    assert "Blocks training:" in shown and "#c62828" in shown  # red
    assert "cannot be trained" in panel.status.text()


@pytest.mark.parametrize("kind", ["missing", "not a dataset"])
def test_a_bad_source_is_one_sentence_and_the_previous_spec_stays(
    qtbot, panel: DataPanel, tmp_path: Path, kind: str
) -> None:  # type: ignore[no-untyped-def]
    before = panel.report
    if kind == "missing":
        bad = tmp_path / "no" / "such" / "folder"
    else:
        bad = tmp_path / "notes.txt"
        bad.write_text("hello", encoding="utf-8")
    with qtbot.waitSignal(panel.import_failed, timeout=IMPORT_MS) as got:
        panel.open_source(str(bad))
    message = got.args[0]
    assert str(bad) in message and "\n" not in message and "Traceback" not in message
    assert message in panel.status.text()
    assert panel.retry_button.isVisibleTo(panel) and not panel.cancel_button.isVisibleTo(panel)
    # The previous source is selected again and is what the state holds; its report stays.
    assert panel.report is before
    assert panel.source.currentData() == "sample:shapes"
    assert panel.source.findData(str(bad)) < 0
    assert panel.state.dataset.source == "sample:shapes"
    assert str(bad) not in load_recent_sources()


def test_cancel_keeps_the_previous_report(qtbot, panel: DataPanel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = panel.report
    folder = plant(tmp_path / "colours")
    panel.open_source(str(folder))
    task = panel.import_task
    assert task is not None and task.running and panel.cancel_button.isVisibleTo(panel)
    with qtbot.waitSignal(panel.import_cancelled, timeout=IMPORT_MS):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert task.state == "cancelled"
    assert panel.import_task is None and panel.report is before
    assert "cancelled" in panel.status.text().lower()
    assert not panel.progress.isVisibleTo(panel) and panel.retry_button.isVisibleTo(panel)
    assert panel.source.currentData() == "sample:shapes"
    assert panel.state.dataset.source == "sample:shapes"

    # The folder still imports when asked again.
    with qtbot.waitSignal(panel.import_finished, timeout=IMPORT_MS) as got:
        panel.open_source(str(folder))
    assert got.args[0].images == 36


def test_a_newer_import_supersedes_a_running_one(qtbot, panel: DataPanel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = plant(tmp_path / "first")
    second = plant(tmp_path / "second", {"a": (0, 0, 0), "b": (255, 255, 255)})
    with qtbot.waitSignal(panel.import_finished, timeout=IMPORT_MS) as got:
        panel.open_source(str(first))
        panel.open_source(str(second))
    assert list(got.args[0].classes) == ["a", "b"]
    assert panel.state.dataset.source == str(second)


def test_image_size_16_reimports_and_the_grid_shrinks(qtbot, panel: DataPanel) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(panel.import_finished, timeout=IMPORT_MS) as got:
        panel.image_size.setValue(16)
    assert panel.state.dataset.image_size == 16
    assert got.args[0].image_size == 16
    assert panel.grid.scale >= 2
    assert {p.width() for p in panel.grid.pixmaps()} == {16 * panel.grid.scale}
    assert {p.height() for p in panel.augmented_grid.pixmaps()} == {16 * panel.grid.scale}

    with qtbot.waitSignal(panel.import_finished, timeout=IMPORT_MS) as got:
        panel.channels.setCurrentIndex(panel.channels.findData(1))
    assert got.args[0].channels == 1 and panel.state.dataset.channels == 1
    image = panel.grid.pixmaps()[0].toImage()
    colour = image.pixelColor(3, 3)
    assert colour.red() == colour.green() == colour.blue()


def test_augmentation_preview_and_reroll(qtbot, panel: DataPanel) -> None:  # type: ignore[no-untyped-def]
    original = images_of(panel.augmented_grid)
    panel.augment_boxes["hflip"].setChecked(True)
    panel.augment_sliders["hflip"].setValue(100)
    panel.augment_boxes["rotate"].setChecked(True)
    steps = [(s.name, s.strength) for s in panel.state.dataset.augment]
    assert steps == [("hflip", 1.0), ("rotate", 0.5)]
    assert panel.import_task is None  # augmentation never re-imports
    assert panel.reroll_button.isEnabled()

    with qtbot.waitSignal(panel.preview_ready, timeout=PREVIEW_MS):
        qtbot.mouseClick(panel.reroll_button, Qt.MouseButton.LeftButton)
    first = images_of(panel.augmented_grid)
    assert len(first) == len(original)
    assert sum(a != b for a, b in zip(first, original, strict=True)) > len(original) // 2

    with qtbot.waitSignal(panel.preview_ready, timeout=PREVIEW_MS):
        qtbot.mouseClick(panel.reroll_button, Qt.MouseButton.LeftButton)
    second = images_of(panel.augmented_grid)
    assert sum(a != b for a, b in zip(first, second, strict=True)) > len(first) // 2
    assert images_of(panel.grid) == original  # the examples themselves never change

    # Switching everything off shows the images as they are again.
    with qtbot.waitSignal(panel.preview_ready, timeout=PREVIEW_MS):
        panel.augment_boxes["hflip"].setChecked(False)
        panel.augment_boxes["rotate"].setChecked(False)
    assert images_of(panel.augmented_grid) == original
    assert not panel.reroll_button.isEnabled()


def test_every_control_updates_the_state(panel: DataPanel) -> None:
    state = panel.state

    def spec():  # type: ignore[no-untyped-def]
        return state.dataset

    panel.val_fraction.setValue(0.3)
    assert spec().val_fraction == pytest.approx(0.3)
    panel.test_fraction.setValue(0.1)
    assert spec().test_fraction == pytest.approx(0.1)
    panel.split_seed.setValue(7)
    assert spec().split_seed == 7
    panel.limit.setValue(600)
    assert spec().limit == 600
    panel.limit.setValue(5)
    assert spec().limit == 20  # the smallest subset a spec allows
    panel.limit.setValue(0)
    assert spec().limit is None
    panel.image_size.setValue(48)
    assert spec().image_size == 48
    panel.image_size.setValue(0)
    assert spec().image_size is None
    panel.channels.setCurrentIndex(panel.channels.findData(1))
    assert spec().channels == 1
    panel.resize_policy.setCurrentIndex(panel.resize_policy.findData("pad"))
    assert spec().resize == "pad"
    panel.class_balance.setCurrentIndex(panel.class_balance.findData("weighted_sampler"))
    assert spec().class_balance == "weighted_sampler"
    panel.augment_boxes["cutout"].setChecked(True)
    assert [(s.name, s.strength) for s in spec().augment] == [("cutout", 0.5)]
    panel.augment_sliders["cutout"].setValue(80)
    assert spec().augment[0].strength == pytest.approx(0.8)
    panel.mixup_alpha.setValue(0.2)
    assert spec().mixup_alpha == pytest.approx(0.2)
    panel.cutmix_alpha.setValue(1.0)
    assert spec().cutmix_alpha == pytest.approx(1.0)
    assert "validation" in panel.split_summary.text()

    # Settings that do not make a valid spec are explained and not pushed.
    good = spec()
    panel.val_fraction.setValue(0.5)
    panel.test_fraction.setValue(0.5)
    assert spec() == good.model_copy(update={"val_fraction": 0.5})
    assert panel.spec_error.isVisibleTo(panel)
    assert "at least 20% for training" in panel.spec_error.text()
    panel.test_fraction.setValue(0.0)
    assert spec().test_fraction == 0.0 and not panel.spec_error.isVisibleTo(panel)


def test_dropping_a_folder_imports_it(qtbot, panel: DataPanel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = plant(tmp_path / "dropped")
    mime = files_mime(folder)  # held here: the events do not own it
    assert drag_enter(panel, mime).isAccepted()
    with qtbot.waitSignal(panel.import_finished, timeout=IMPORT_MS) as got:
        panel.dropEvent(drop_event(mime))
    assert got.args[0].images == 36
    assert panel.state.dataset.source == str(folder)

    text = QMimeData()
    text.setText("just words")
    assert not drag_enter(panel, text).isAccepted()


# ------------------------------------------------------------------------------ the Task


def _run(qtbot, fn, signal: str = "finished"):  # type: ignore[no-untyped-def]
    task = Task(fn)
    with qtbot.waitSignal(getattr(task, signal), timeout=IMPORT_MS) as got:
        task.start()
    return task, got.args


def test_task_delivers_result_and_throttled_progress_on_the_gui_thread(qtbot) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, int, int, bool]] = []
    gui = threading.get_ident()

    def work(progress, should_stop):  # type: ignore[no-untyped-def]
        for i in range(20_000):
            progress("Counting", i + 1, 20_000)
        return threading.get_ident()

    task = Task(work)
    task.progress.connect(
        lambda stage, done, total: seen.append((stage, done, total, threading.get_ident() == gui))
    )
    with qtbot.waitSignal(task.finished, timeout=IMPORT_MS) as got:
        task.start()
    assert got.args[0] != gui and task.state == "finished"
    assert 1 <= len(seen) < 200  # throttled, not 20,000 signals
    assert seen[-1][:3] == ("Counting", 20_000, 20_000)
    assert all(on_gui for *_, on_gui in seen)


def test_task_failures_are_one_line(qtbot) -> None:  # type: ignore[no-untyped-def]
    def user_error(progress, should_stop):  # type: ignore[no-untyped-def]
        raise DataError("The folder is empty.", hint="Put images in it.")

    def bug(progress, should_stop):  # type: ignore[no-untyped-def]
        raise ValueError("boom")

    task, args = _run(qtbot, user_error, "failed")
    assert args == ["The folder is empty. Put images in it."] and task.state == "failed"
    task, args = _run(qtbot, bug, "failed")
    assert args == ["ValueError: boom"]


def test_task_cancel_stops_the_work(qtbot) -> None:  # type: ignore[no-untyped-def]
    started = threading.Event()

    def work(progress, should_stop):  # type: ignore[no-untyped-def]
        started.set()
        while not should_stop():
            started.wait(0.005)  # the worker polls its flag; the test itself waits on a signal
        raise Cancelled()

    task = Task(work)
    task.start()
    assert started.wait(10)
    with qtbot.waitSignal(task.cancelled, timeout=IMPORT_MS):
        task.cancel()
    assert task.state == "cancelled" and task.cancel_requested

    # A cancel that comes after the work ended but before its result arrived still wins.
    quick = Task(lambda progress, should_stop: 42)
    with qtbot.waitSignal(quick.cancelled, timeout=IMPORT_MS):
        quick.start()
        quick.cancel()
    assert quick.result is None and quick.state == "cancelled"


QUIT_WHILE_IMPORTING = r"""
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from cnn_lab.app.panels.data_panel import DataPanel
from cnn_lab.app.state import AppState
app = QApplication(sys.argv[:1])
panel = DataPanel(AppState(sys.argv[1]))
panel.show()
panel.open_source(sys.argv[2])
assert panel.import_task is not None and panel.import_task.running
QTimer.singleShot(0, app.quit)
code = app.exec()
del panel
sys.exit(code)
"""


def test_quitting_during_an_import_is_quiet(tmp_path: Path) -> None:
    folder = plant(tmp_path / "colours", n=40)
    done = subprocess.run(
        [sys.executable, "-c", QUIT_WHILE_IMPORTING, str(tmp_path / "runs.sqlite"), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "deleted" not in done.stderr, done.stderr
