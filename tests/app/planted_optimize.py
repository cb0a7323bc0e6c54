"""Planted tuners for the Optimize panel's child process: no torch steps, a fake clock.

``OptimizeRunner(planted="tests.app.planted_optimize:planted")`` makes the child call
``planted()`` for ``optimize``'s ``tuners`` and ``clock``. They are
tests/engine/test_optimize.py's planted tuners (the search is the real TPE study over a
planted trainer that records real runs), each also reporting one progress step, so every
phase shows in the panel as the real tuners' would.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any

from cnn_lab.engine.optimize import Tuners
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st
from tests.engine.test_optimize import FakeClock, Planted


def _reporting(tool: Any, stage: str) -> Any:
    def call(*args: Any) -> Any:
        progress = args[-1]
        progress(stage, 0, 1)
        result = tool(*args)
        progress(stage, 1, 1)
        return result

    return call


def planted() -> dict[str, Any]:
    plant = Planted(FakeClock())
    tuners: Tuners = plant.tuners()
    tuners = replace(
        tuners,
        epoch=_reporting(tuners.epoch, "epoch probe"),
        batch=_reporting(tuners.batch, "batch check"),
        speed=_reporting(tuners.speed, "speed advisor"),
        rate=_reporting(tuners.rate, "LR range test"),
    )
    return {"tuners": tuners, "clock": plant.clock}


class _Blocking(Planted):
    """Trials that train until told to stop, on the real clock: an optimize still running
    when the window closes."""

    def train(self, spec: Any, db_path: Any, run_id: int | None = None, *,
              emit: Any, should_stop: Any, sample_system: bool) -> Any:  # fmt: skip
        assert run_id is not None
        with RunStore.open(db_path) as store:
            store.mark_running(run_id, pid=os.getpid(), device="cpu")
        while not should_stop():
            time.sleep(0.02)
        with RunStore.open(db_path) as store:
            store.finish_run(run_id, st.STOPPED, reason="Stopped by optimize.")
            return store.get_run(run_id)


def blocking() -> dict[str, Any]:
    """Planted tuners whose first search trial runs until optimize is stopped."""
    plant = _Blocking(FakeClock())
    return {"tuners": plant.tuners(), "clock": plant.clock}
