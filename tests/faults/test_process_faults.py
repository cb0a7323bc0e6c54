"""Killed processes: the job's child killed outright, and the window's process killed under it.

Either way a person opening cnn-lab next must see the truth (crashed, or stopped with why),
keep every metric that reached the disk, find the database sound, and be able to resume
from the last checkpoint. These tests kill real processes with SIGKILL, so nothing in the
dying process gets a chance to tidy up.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import psutil
import pytest

from cnn_lab.engine.jobs.job import WINDOW_GONE_REASON
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore, run_files_dir
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train import checkpoint as ck
from cnn_lab.engine.train.events import CheckpointSaved, StepEnd
from tests.engine import test_jobs as job_tests
from tests.engine.test_cli import Result, invoke
from tests.engine.test_jobs import Child

STEPS_PER_EPOCH = 5  # 200 images, 160 to train in batches of 32
START_TIMEOUT_S = 120  # a spawned child imports torch and prepares the data first


def tiny_spec(epochs: int) -> RunSpec:
    """A run whose epochs take a fraction of a second on a CPU."""
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 200, "image_size": 16},
            "architecture": {"preset": "small_cnn", "width": 0.25},
            "train": {"epochs": epochs, "batch_size": 32, "device": "cpu"},
        }
    )


spawn_job = job_tests.spawn  # the job process exactly as tests/engine/test_jobs.py starts it


def resume_to_the_next_epoch(db_path: Path, run_id: int) -> tuple[ck.Progress, Result]:
    """Resume ``run_id`` with ``cnn-lab resume`` for one epoch past its last checkpoint."""
    saved = ck.load_checkpoint(run_files_dir(db_path, run_id) / "last.ckpt").progress
    epochs = saved.epochs_done + 1
    result = invoke(
        ["resume", str(run_id), "--epochs", str(epochs), "--db", str(db_path), "--json"]
    )
    return saved, result


def assert_resumed_from(db_path: Path, run_id: int, saved: ck.Progress, result: Result) -> None:
    """The resume continued at the checkpoint's step, finished, and logged each step once."""
    assert result.code == 0, result.err
    assert json.loads(result.out)["status"] == st.COMPLETED
    assert saved.step > 0
    assert f"resuming at step {saved.step}" in result.err
    with RunStore.open(db_path) as s:
        steps = [p.step for p in s.metrics(run_id, "train.loss")]
        assert s.integrity_ok()
    assert steps == list(range(1, (saved.epochs_done + 1) * STEPS_PER_EPOCH + 1))


# ------------------------------------------------------------------ the job's child killed


def test_a_killed_job_is_crashed_keeps_what_it_flushed_and_resumes(
    spawn_job: Callable[[RunSpec], Child], db_path: Path
) -> None:
    child = spawn_job(tiny_spec(epochs=200))  # cannot finish before it is killed
    # The job flushes its metrics before it reports a checkpoint, so once the first one is
    # heard every step of epoch 1 is on disk; the kill lands a step or more after it.
    child.receive_until(lambda e: isinstance(e, CheckpointSaved), timeout_s=START_TIMEOUT_S)
    child.receive_until(lambda e: isinstance(e, StepEnd), timeout_s=30)
    with RunStore.open(db_path) as watcher:
        flushed = watcher.metric_keys(child.run_id).get("train.loss", 0)
        assert watcher.get_run(child.run_id).status == st.RUNNING
    assert flushed >= STEPS_PER_EPOCH

    assert child.process.pid is not None
    os.kill(child.process.pid, signal.SIGKILL)
    child.process.join(30)
    assert child.process.exitcode == -signal.SIGKILL

    with RunStore.open(db_path) as s:  # opening sweeps runs whose process on this host is gone
        record = s.get_run(child.run_id)
        kept = s.metric_keys(child.run_id).get("train.loss", 0)
        assert s.integrity_ok()
    assert record.status == st.CRASHED
    assert record.reason is not None and "process is gone" in record.reason
    assert record.ended_at is not None
    assert kept >= flushed

    saved, result = resume_to_the_next_epoch(db_path, child.run_id)
    assert saved.batch == 0  # the epoch-end checkpoint: resuming starts the next epoch
    assert_resumed_from(db_path, child.run_id, saved, result)


# ------------------------------------------------------------------ the window's process killed

PARENT = """
import sys
from PySide6.QtCore import QCoreApplication
from cnn_lab.app.bridge.job_controller import JobController
from cnn_lab.engine.specs import RunSpec

app = QCoreApplication([])
controller = JobController(sys.argv[1], slots=["cpu"])

def on_events(run_id, events):
    if any(getattr(e, "kind", "") == "step" for e in events):
        print("training", flush=True)

controller.child_started.connect(lambda run_id, pid: print("child", run_id, pid, flush=True))
controller.events.connect(on_events)
controller.run_finished.connect(app.quit)
controller.start(RunSpec.from_json(sys.argv[2]))
app.exec()
"""
"""The window's side of a job, without the widgets: Train goes through JobController, which
starts a JobWorker thread that starts the job's child, exactly as in the window."""


class Lines:
    """A process's stdout, line by line, read on a thread so waiting can have a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.strip())
        self.lines.put(None)

    def until(self, prefix: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                pytest.fail(f"no {prefix!r} line within {timeout_s} s; got {self.seen}")
            if line is None:
                pytest.fail(f"the process ended before a {prefix!r} line; got {self.seen}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line


def test_when_the_window_process_is_killed_the_job_checkpoints_and_says_why(
    db_path: Path, tmp_path: Path
) -> None:
    log = (tmp_path / "parent.log").open("w")
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(db_path), tiny_spec(epochs=500).to_json()],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        lines = Lines(parent.stdout)  # type: ignore[arg-type]
        _, run_id, pid = lines.until("child", START_TIMEOUT_S).split()
        lines.until("training", START_TIMEOUT_S)
        descendants = psutil.Process(parent.pid).children(recursive=True)
        assert int(pid) in {p.pid for p in descendants}
        parent.send_signal(signal.SIGKILL)
        assert parent.wait(30) == -signal.SIGKILL
        # The job notices it was orphaned at its next step, checkpoints and exits; nothing the
        # window started (the job, multiprocessing's resource tracker) is left behind.
        _, alive = psutil.wait_procs(descendants, timeout=60)
        assert alive == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        log.close()

    with RunStore.open(db_path) as s:  # what the next launch of the window shows
        record = s.get_run(int(run_id))
        kinds = {a["kind"] for a in s.artifacts(int(run_id))}
        assert s.integrity_ok()
    assert record.status == st.STOPPED, (record.reason, (tmp_path / "parent.log").read_text())
    assert record.reason == WINDOW_GONE_REASON
    assert "checkpoint.last" in kinds

    saved, result = resume_to_the_next_epoch(db_path, int(run_id))
    assert_resumed_from(db_path, int(run_id), saved, result)
