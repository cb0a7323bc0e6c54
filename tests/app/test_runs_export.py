"""The Runs panel exports a trained run's network in the background and says how it went."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QThreadPool

from cnn_lab.app.panels.runs_panel import RunsPanel
from cnn_lab.app.state import AppState
from cnn_lab.engine.jobs.job import run_job
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import status as st
from tests.app.settle import settle


def test_export_a_trained_run_from_the_runs_panel(qtbot, db_path: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 100, "image_size": 16},
            "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
        }
    )
    record = run_job(spec, db_path, sample_system=False)
    assert record.status == st.COMPLETED
    panel = RunsPanel(AppState(db_path))
    qtbot.addWidget(panel)
    settle(qtbot, panel)  # the panel lists the runs off the GUI thread
    assert panel.selected_run_id() == record.id
    assert panel.export_button.isEnabled()

    out = tmp_path / "model.pt"
    task = panel.export_run(record.id, str(out), "torchscript")
    with qtbot.waitSignal(task.finished, timeout=60_000):
        pass
    assert out.is_file()
    assert panel.detail.text().startswith(f"Exported torchscript to {out}")
    assert panel.export_button.isEnabled()

    task = panel.export_run(record.id, str(tmp_path / "missing" / "m.pt"), "torchscript")
    with qtbot.waitSignal(task.failed, timeout=60_000):
        pass
    assert panel.detail.text().startswith("Export failed: Cannot export to")
    QThreadPool.globalInstance().waitForDone(10_000)
