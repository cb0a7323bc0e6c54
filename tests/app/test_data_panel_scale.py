"""The Data panel imports 5,000 photos with progress and time left, and the window stays live.

The decoding runs in worker processes and the import's bookkeeping in a Task thread, so the
GUI thread only receives throttled progress. Responsiveness is checked without a clock: a
timer on the GUI thread reads the progress line throughout the import, and it must have seen
the count of decoded files change several times (a GUI thread blocked by the import would
tick only before and after it, and see no count but the last). The longest pause between
ticks is printed, never asserted: on a loaded 2-core machine it measures the load.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QThreadPool, QTimer

from benchmarks.photo_folder import write_photo_folder
from cnn_lab.app.panels.data_panel import DataPanel
from cnn_lab.app.state import AppState

PHOTOS = 5000


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5,000 small photos (160 to 320 px) from the real photographs in scikit-image."""
    root = tmp_path_factory.mktemp("photos") / "folder"
    write_photo_folder(root, PHOTOS, long_sides=(160, 320), png_every=100, workers=2)
    return root


@pytest.fixture
def panel(
    qtbot, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DataPanel]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path / "cache"))
    panel = DataPanel(AppState(db_path))
    qtbot.addWidget(panel)
    panel.resize(1260, 720)
    with qtbot.waitSignal(panel.import_finished, timeout=60_000):
        panel.show()  # the built-in sample first
    yield panel
    panel.cancel()
    assert QThreadPool.globalInstance().waitForDone(30_000)


@pytest.mark.slow
def test_five_thousand_photos_import_with_progress_and_a_live_window(
    qtbot,
    panel: DataPanel,
    photos: Path,  # type: ignore[no-untyped-def]
) -> None:
    ticks: list[float] = []
    labels: list[str] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.timeout.connect(lambda: labels.append(panel.progress.label.text()))
    timer.start()
    started = time.perf_counter()
    with qtbot.waitSignal(panel.import_finished, timeout=600_000) as got:
        panel.open_source(str(photos))
    ended = time.perf_counter()
    timer.stop()

    report = got.args[0]
    assert report.images == PHOTOS and not report.skipped
    assert sum(report.classes.values()) == PHOTOS
    # Progress came as the files were decoded, with a count and (once known) the time left.
    decoding = [t for t in labels if t.startswith("Decoding images")]
    counts = {t.split(" · ")[1] for t in decoding if " · " in t}
    assert len(counts) >= 5, counts
    assert any(t.endswith(" left") for t in decoding), decoding[-5:]
    # The GUI thread kept running its own timer all along.
    during = [t for t in ticks if started <= t <= ended]
    gaps = [b - a for a, b in zip([started, *during], [*during, ended], strict=True)]
    print(f"import {ended - started:.1f} s, longest GUI stall {max(gaps) * 1000:.0f} ms")
    assert len(during) >= 20
    # The histogram and the example grid show the imported folder.
    assert dict(zip(panel.histogram.names(), panel.histogram.heights(), strict=True)) == {
        name: count for name, count in report.classes.items()
    }
    assert len(panel.grid.pixmaps()) == 7 * min(panel.grid.per_class, PHOTOS // 7)
