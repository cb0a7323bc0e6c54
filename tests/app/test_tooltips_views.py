"""Every option of the viewing panels says what it does (and what it costs, where it does)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from cnn_lab.app.panels.sweep_panel import SweepPanel
from cnn_lab.app.state import AppState
from tests.app.fake_sweep_runner import FakeSweepRunner
from tests.app.test_empty_states import PANELS as EMPTY_STATE_PANELS
from tests.app.tooltip_audit import options_without_tooltips
from tests.app.tune_results import FakeRunner


def _sweep_with_rows(state: AppState) -> SweepPanel:
    """A sweep with a values row and a range row: the rows' fields are options too."""
    panel = SweepPanel(state, runner_factory=FakeSweepRunner, probe_factory=FakeRunner)
    panel.editor.add_row("train.lr")
    panel.editor.add_row("train.batch_size").mode.setCurrentText("range")
    return panel


PANELS: dict[str, Callable[[AppState], QWidget]] = {**EMPTY_STATE_PANELS, "sweep": _sweep_with_rows}
"""The viewing panels as the empty-state tests make them, with rows in the sweep editor."""


@pytest.mark.parametrize("name", list(PANELS))
def test_every_option_has_a_tooltip(qtbot: QtBot, db_path: Path, name: str) -> None:
    panel = PANELS[name](AppState(db_path))
    qtbot.addWidget(panel)
    assert options_without_tooltips(panel) == []
