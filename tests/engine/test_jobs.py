"""A job from spec to stored run: in this process, in a spawned child, stopped, failed.

``run_job`` is the one path every run takes (the window's job process, ``cnn-lab train``), so
these tests check what a person relies on afterwards: the run ends in a final status with a
readable reason and every metric trained so far is in the store. A job killed outright is a
fault test: tests/faults/test_process_faults.py.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import pytest

from cnn_lab.engine.jobs.batching import SEND_EVERY_S
from cnn_lab.engine.jobs.job import child_main, create_run, run_job
from cnn_lab.engine.jobs.recording import METRIC_FIELDS
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train.events import (
    DataProgress,
    EpochEnd,
    RunFinished,
    RunStarted,
    StepEnd,
    SystemSampled,
)

LIMIT = 600  # 480 train / 120 val images: 15 steps of 32 per epoch, well under a second
BATCH = 32
STEPS_PER_EPOCH = 15


def quick_spec(epochs: int = 2, **overrides: Any) -> RunSpec:
    """A run that trains in well under a second on a CPU."""
    data: dict[str, Any] = {
        "dataset": {"source": "sample:shapes", "limit": LIMIT},
        "train": {"epochs": epochs, "batch_size": BATCH, "device": "cpu"},
    }
    for section, values in overrides.items():
        data[section] = {**data.get(section, {}), **values}
    return RunSpec.from_dict(data)


@pytest.fixture
def store(db_path: Path) -> Iterator[Callable[[], RunStore]]:
    """Open the test's store on demand (after a job wrote it), closing every one opened."""
    opened: list[RunStore] = []

    def open_store() -> RunStore:
        opened.append(RunStore.open(db_path))
        return opened[-1]

    yield open_store
    for each in opened:
        each.close()


def lifecycle(events: list[Any]) -> list[Any]:
    """The training events, without the system samples (which come from their own thread)
    and the data preparation's progress (which comes before the run starts)."""
    return [e for e in events if not isinstance(e, SystemSampled | DataProgress)]


# ------------------------------------------------------------------------- in this process


def test_a_quick_run_is_recorded_completely(db_path: Path, store: Callable[[], RunStore]) -> None:
    spec = quick_spec(epochs=2)
    events: list[Any] = []
    started = time.perf_counter()
    record = run_job(spec, db_path, emit=events.append, flush_interval_s=0.1)
    wall_s = time.perf_counter() - started

    assert record.status == st.COMPLETED
    assert record.reason is None
    assert record.started_at is not None and record.ended_at is not None
    assert record.ended_at >= record.started_at
    assert record.pid == os.getpid()

    s = store()
    stored = s.get_run(record.id)
    assert stored.status == st.COMPLETED
    assert RunSpec.from_json(stored.spec_json) == spec
    assert stored.spec_hash == spec.spec_hash()
    assert stored.dataset == "sample:shapes"
    assert stored.model == spec.architecture.preset
    summary = stored.summary
    assert summary["epochs"] == 2
    assert 0.0 <= summary["best_val_accuracy"] <= 1.0
    assert summary["train_images_per_s"] > 0
    assert summary["device"].startswith("cpu")
    assert summary["steps"] == 2 * STEPS_PER_EPOCH

    steps = [e for e in events if isinstance(e, StepEnd)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert len(steps) == 2 * STEPS_PER_EPOCH
    keys = s.metric_keys(record.id)
    assert set(keys) == {key for fields in METRIC_FIELDS.values() for key in fields}
    assert keys["train.loss"] == len(steps)
    assert keys["lr"] == len(steps)
    assert keys["val.accuracy"] == len(epochs) == 2
    assert [p.step for p in s.metrics(record.id, "train.loss")] == [e.step for e in steps]
    assert [p.value for p in s.metrics(record.id, "train.loss")] == pytest.approx(
        [e.loss for e in steps]
    )

    # The sampler takes its first reading as it starts, before training begins, so every run
    # has at least one; and every reading it emitted was also stored (none lost at close).
    emitted = [e for e in events if isinstance(e, SystemSampled) and "cpu.percent" in e.values]
    samples = s.system_samples(record.id, "cpu.percent")
    print(f"\nrun took {wall_s:.2f} s; {len(samples)} cpu.percent samples")
    assert len(samples) >= 1
    assert len(samples) == len(emitted)
    assert all(0.0 <= x.value <= 100.0 for x in samples)

    flow = lifecycle(events)
    assert isinstance(flow[0], RunStarted)
    assert isinstance(flow[-1], RunFinished)
    assert flow[-1].status == record.status
    assert flow[-1].run_id == record.id
    assert sum(isinstance(e, RunFinished) for e in events) == 1


def test_a_stop_after_n_steps_keeps_every_step(
    db_path: Path, store: Callable[[], RunStore]
) -> None:
    n = STEPS_PER_EPOCH + 5  # past the first epoch, so one validation is stored as well
    events: list[Any] = []

    def should_stop() -> bool:
        return sum(isinstance(e, StepEnd) for e in events) >= n

    record = run_job(
        quick_spec(epochs=5),
        db_path,
        emit=events.append,
        should_stop=should_stop,
        sample_system=False,
        flush_interval_s=0.1,
    )
    assert record.status == st.STOPPED
    assert record.reason == f"Stopped by request at step {n}; it can be resumed."
    finished = lifecycle(events)[-1]
    assert isinstance(finished, RunFinished) and finished.status == st.STOPPED
    s = store()
    keys = s.metric_keys(record.id)
    assert keys["train.loss"] == n
    assert [p.step for p in s.metrics(record.id, "train.loss")] == list(range(1, n + 1))
    assert keys["val.accuracy"] == 1
    assert s.get_run(record.id).summary["epochs"] == 1


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"architecture": {"preset": "nope"}}, "There is no model preset called 'nope'"),
        # cuda:99, not cuda: it is missing on a machine with GPUs too, so the test is the same
        # on every machine (no GPU: "sees no CUDA GPU"; some GPUs: "has N CUDA GPU(s)").
        ({"train": {"device": "cuda:99"}}, "The run asks for cuda:99"),
        ({"dataset": {"source": "nowhere:thing"}}, "There is no file or folder at"),
    ],
    ids=["unknown-preset", "missing-device", "unknown-source"],
)
def test_a_spec_that_fails_in_training_ends_failed_with_a_sentence(
    db_path: Path,
    store: Callable[[], RunStore],
    overrides: dict[str, Any],
    expected: str,
) -> None:
    events: list[Any] = []
    record = run_job(quick_spec(**overrides), db_path, emit=events.append, flush_interval_s=0.1)

    assert record.status == st.FAILED
    assert record.reason is not None and expected in record.reason
    assert "Traceback" not in record.reason and "\n" not in record.reason
    assert record.ended_at is not None
    finished = [e for e in events if isinstance(e, RunFinished)]
    assert len(finished) == 1
    assert finished[0].status == st.FAILED
    assert finished[0].reason == record.reason
    assert isinstance(lifecycle(events)[-1], RunFinished)
    s = store()
    assert s.get_run(record.id).status == st.FAILED
    assert s.metric_keys(record.id) == {}
    assert s.integrity_ok()


# --------------------------------------------------------------------- in a spawned child


@dataclass
class Child:
    """A job process as the window's JobController starts it."""

    process: BaseProcess
    reader: Connection
    stop: MpEvent
    run_id: int
    events: list[Any]
    messages: list[Any]
    """What came over the pipe, one entry a message: the child batches events into lists."""

    def receive_until(self, done: Callable[[Any], bool], timeout_s: float) -> Any:
        """Read events until one satisfies ``done``; fail on a deadline or a closed pipe."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no awaited event within {timeout_s} s; got {self.kinds()}")
            if not self.reader.poll(min(remaining, 0.5)):
                if not self.process.is_alive() and not self.reader.poll(0):
                    pytest.fail(
                        f"the job exited ({self.process.exitcode}) early; got {self.kinds()}"
                    )
                continue
            try:
                message = self.reader.recv()
            except EOFError:
                pytest.fail(f"the pipe closed early; got {self.kinds()}")
            self.messages.append(message)
            assert isinstance(message, list), f"a batched child sent {message!r} alone"
            self.events.extend(message)
            awaited = [event for event in message if done(event)]
            if awaited:
                return awaited[0]

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in lifecycle(self.events)][-5:]


@pytest.fixture
def spawn(db_path: Path) -> Iterator[Callable[[RunSpec], Child]]:
    """Start ``child_main`` in a spawned process, batching its events as the window's job
    thread asks it to; kill any still alive at the end."""
    ctx = multiprocessing.get_context("spawn")
    children: list[Child] = []

    def start(spec: RunSpec) -> Child:
        with RunStore.open(db_path) as s:
            run_id = create_run(s, spec)
        reader, writer = ctx.Pipe(duplex=False)
        stop = ctx.Event()
        process = ctx.Process(
            target=child_main,
            args=(spec.to_json(), str(db_path), run_id, writer, stop),
            kwargs={"send_every_s": SEND_EVERY_S},
            name=f"test-job-{run_id}",
        )
        process.start()
        writer.close()  # the child holds the only write end, so EOF means it is gone
        children.append(Child(process, reader, stop, run_id, [], []))
        return children[-1]

    yield start
    for child in children:
        if child.process.is_alive():
            child.process.kill()
        child.process.join(10)
        child.reader.close()


def test_a_spawned_job_completes_and_reports_every_step(
    spawn: Callable[[RunSpec], Child], store: Callable[[], RunStore]
) -> None:
    child = spawn(quick_spec(epochs=2))
    finished = child.receive_until(lambda e: isinstance(e, RunFinished), timeout_s=60)
    child.process.join(30)
    assert child.process.exitcode == 0
    assert finished.status == st.COMPLETED
    assert isinstance(lifecycle(child.events)[0], RunStarted)

    s = store()
    record = s.get_run(child.run_id)
    assert record.status == st.COMPLETED
    assert record.pid == child.process.pid
    steps = [e for e in child.events if isinstance(e, StepEnd)]
    assert [e.step for e in steps] == list(range(1, 2 * STEPS_PER_EPOCH + 1))  # all, in order
    assert s.metric_keys(child.run_id)["train.loss"] == len(steps)


def test_a_spawned_job_stops_soon_after_the_request(
    spawn: Callable[[RunSpec], Child], store: Callable[[], RunStore]
) -> None:
    child = spawn(quick_spec(epochs=50))  # far more than it could train before the stop
    child.receive_until(lambda e: isinstance(e, StepEnd), timeout_s=60)
    asked = time.monotonic()
    child.stop.set()
    finished = child.receive_until(lambda e: isinstance(e, RunFinished), timeout_s=30)
    took_s = time.monotonic() - asked
    child.process.join(30)
    print(f"\nstopped {took_s:.2f} s after the request")
    assert took_s < 10.0  # about one step in practice; generous for a loaded machine
    assert child.process.exitcode == 0
    assert finished.status == st.STOPPED

    s = store()
    record = s.get_run(child.run_id)
    assert record.status == st.STOPPED
    assert record.reason is not None and record.reason.startswith("Stopped by request")
    steps = [e for e in child.events if isinstance(e, StepEnd)]
    assert len(steps) < 50 * STEPS_PER_EPOCH
    assert s.metric_keys(child.run_id)["train.loss"] == len(steps)


def test_a_folder_never_imported_reports_its_preparation_before_the_run_starts(
    spawn: Callable[[RunSpec], Child], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training-time preparation (listing, decoding into the cache) reaches the window
    through the child's pipe like any other long task: stage, count, total."""
    import numpy as np
    from PIL import Image

    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path / "cache"))  # the child inherits it
    rng = np.random.default_rng(0)
    for i in range(160):
        folder = tmp_path / "photos" / f"class_{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
        pixels[:, :, i % 2] = 255  # a class is a colour
        Image.fromarray(pixels).save(folder / f"{i}.png")
    spec = quick_spec(epochs=1, dataset={"source": str(tmp_path / "photos"), "limit": None})
    child = spawn(spec)
    finished = child.receive_until(lambda e: isinstance(e, RunFinished), timeout_s=120)
    assert finished.status == st.COMPLETED
    first_start = next(i for i, e in enumerate(child.events) if isinstance(e, RunStarted))
    preparing = [e for e in child.events if isinstance(e, DataProgress)]
    assert preparing and all(child.events.index(e) < first_start for e in preparing)
    decoding = [(e.done, e.total) for e in preparing if e.stage == "Decoding images"]
    assert decoding[-1] == (160, 160)
    assert [done for done, _ in decoding] == sorted(done for done, _ in decoding)
    assert {e.stage for e in preparing} >= {"Listing files", "Decoding images"}


@pytest.mark.parametrize(
    ("architecture", "hint"),
    [
        ({"preset": "small_cnn"}, "Lower the batch size or the model width."),
        (
            {"preset": "timm", "timm_model": "resnet18"},
            "Lower the batch size or the image size, or pick a smaller network.",
        ),
    ],
    ids=["a preset has a width", "a timm network has none"],
)
def test_out_of_memory_suggests_only_what_the_network_can_change(
    architecture: dict[str, Any], hint: str
) -> None:
    from cnn_lab.engine.jobs.job import _ended_by
    from cnn_lab.engine.specs import ArchitectureSpec

    spec = ArchitectureSpec(**architecture)
    for exc in (MemoryError(), RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")):
        ended = _ended_by(exc, spec)
        assert ended["status"] == st.FAILED and ended["hint"] == hint, ended
    # the tuners' and optimize's processes say the same of the network
    from cnn_lab.engine.optimize.child import oom_hint as optimize_hint
    from cnn_lab.engine.specs import RunSpec
    from cnn_lab.engine.tune.child import oom_hint as tune_hint

    run = RunSpec.from_dict({"architecture": architecture})
    assert tune_hint(run).startswith(hint) and tune_hint(None).startswith("Lower the batch size.")
    request: dict[str, Any] = {"spec_json": run.to_json()}
    assert optimize_hint(request) == hint
    assert optimize_hint({**request, "widths": [0.5, 1.0]}).startswith(f"{hint} Or give fewer")
    assert optimize_hint({"spec_json": "{"}) == "Lower the batch size."
