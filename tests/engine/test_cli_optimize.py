"""``cnn-lab optimize`` in this process: refusals in one line, before anything is recorded.

The whole optimize on real data is tests/engine/test_optimize.py's end-to-end test; here
the command's wiring: its options reach ``optimize`` and its refusals reach the terminal.
"""

from __future__ import annotations

from pathlib import Path

from cnn_lab.engine.optimize import OPTIMIZE_KIND
from cnn_lab.engine.store import RunStore
from tests.engine.test_cli import assert_refused_in_one_line, invoke

TINY = ["--data", "sample:shapes", "--limit", "300", "--size", "16", "--device", "cpu"]


def test_a_target_goal_without_a_target_is_refused(db_path: Path) -> None:
    result = invoke(["optimize", *TINY, "--budget", "1", "--goal", "target", "--db", str(db_path)])
    assert_refused_in_one_line(result)
    assert "target accuracy" in result.err


def test_a_budget_below_one_epoch_is_refused_before_anything_is_recorded(db_path: Path) -> None:
    result = invoke(["optimize", *TINY, "--budget", "0.02", "--db", str(db_path)])
    # progress lines of the measurement may come first (a cold cache); the refusal is one line
    assert result.code == 2 and "Traceback" not in result.err, result.err
    refusal = result.err_lines()[-1]
    assert refusal.startswith("cnn-lab: A budget of 1 s is too small"), result.err
    with RunStore.open(db_path) as store:
        assert store.experiments(OPTIMIZE_KIND) == []
        assert store.list_runs() == []


def test_optimize_is_listed_in_help() -> None:
    result = invoke(["--help"])
    assert result.code == 0
    assert "optimize" in result.out
