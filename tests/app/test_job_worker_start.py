"""A child process that cannot even start ends in a sentence: a job still ends recorded, so its
slot is freed, and a tuner (the same ChildThread loop) fails with the reason."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest

from cnn_lab.app.bridge.job_worker import JobWorker
from cnn_lab.app.bridge.tune_runner import TuneRunner
from cnn_lab.engine.jobs.job import create_run
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st


class _Unstartable:
    """A process the operating system refuses to create."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sentinel = None

    def start(self) -> None:
        raise OSError(24, "Too many open files")


def test_a_child_that_cannot_start_fails_the_run_with_the_reason(  # type: ignore[no-untyped-def]
    qtbot, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = RunSpec.from_dict({"train": {"device": "cpu"}})
    with RunStore.open(db_path) as store:
        run_id = create_run(store, spec)
    worker = JobWorker(run_id, spec.to_json(), str(db_path))
    # the spawn context is shared by the whole process: monkeypatch puts it back afterwards
    monkeypatch.setattr(worker._ctx, "Process", _Unstartable)
    with qtbot.waitSignal(worker.job_finished, timeout=10_000) as finished:
        worker.start()
    worker.wait(5_000)
    assert finished.args[:2] == [run_id, st.FAILED]
    assert "could not be started" in finished.args[2]
    assert "Too many open files" in finished.args[2]
    with RunStore.open(db_path) as store:
        record = store.get_run(run_id)
    assert record.status == st.FAILED
    assert record.hint and "open-file limits" in record.hint


def test_a_tuner_child_that_cannot_start_fails_with_the_reason(  # type: ignore[no-untyped-def]
    qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mp.get_context("spawn"), "Process", _Unstartable)
    runner = TuneRunner()
    with qtbot.waitSignal(runner.failed, timeout=10_000) as failed:
        runner.start("lr", RunSpec.from_dict({"train": {"device": "cpu"}}))
    assert failed.args == [
        "The tuning process could not be started: [Errno 24] Too many open files."
    ]
    assert not runner.running  # another tuner can start
