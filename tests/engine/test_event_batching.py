"""A job's child batches its events for the pipe: few messages, every event, in order, on time.

The clock is planted (``FakeClock``), so when a batch leaves is decided by the test, not by
how fast this machine runs; the one test of the background flusher waits on the send itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

from cnn_lab.engine.jobs import job
from cnn_lab.engine.jobs.batching import EventBatcher
from cnn_lab.engine.jobs.job import SEND_AT_ONCE, child_main, create_run
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store.busy import StoreBusy
from cnn_lab.engine.train.events import EpochEnd, RunFinished, StepEnd, SystemSampled

INTERVAL_S = 0.125
"""Binary fractions throughout, so the planted clock's sums are exact."""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def step(n: int) -> StepEnd:
    return StepEnd(
        step=n, epoch=1, loss=1.0 / n, lr=0.1, images_per_s=1e3, elapsed_s=n, progress=0, eta_s=0
    )


def finished() -> RunFinished:
    return RunFinished(run_id=1, status="completed")


def batcher(sent: list[list[Any]], clock: FakeClock) -> EventBatcher:
    return EventBatcher(
        sent.append,
        interval_s=INTERVAL_S,
        urgent=lambda e: getattr(e, "kind", "") in SEND_AT_ONCE,
        clock=clock,
        background=False,
    )


def test_many_steps_cross_the_pipe_in_few_messages_all_in_order() -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    messages: list[Any] = []

    def read() -> None:  # as the job thread does, so the pipe never fills
        with contextlib.suppress(EOFError):
            while True:
                messages.append(reader.recv())

    parent = threading.Thread(target=read)
    parent.start()
    clock = FakeClock()
    with EventBatcher(writer.send, interval_s=INTERVAL_S, clock=clock, background=False) as b:
        for n in range(1, 1025):  # 1024 steps, one every 1/1024 s: one second of training
            clock.now += 1 / 1024
            b.emit(step(n))
    writer.close()
    parent.join(timeout=30)
    reader.close()
    assert all(isinstance(m, list) for m in messages)
    assert [e.step for m in messages for e in m] == list(range(1, 1025))
    assert len(messages) == 8  # one per 0.125 s; close() found nothing left


def test_a_batch_leaves_once_the_interval_has_passed() -> None:
    sent: list[list[Any]] = []
    clock = FakeClock()
    b = batcher(sent, clock)
    b.emit(step(1))
    clock.now += INTERVAL_S / 2
    b.emit(step(2))
    assert sent == []  # not due yet: both wait
    clock.now += INTERVAL_S / 2
    b.emit(step(3))
    assert [[e.step for e in m] for m in sent] == [[1, 2, 3]]


def test_the_finish_goes_out_at_once_with_everything_before_it() -> None:
    sent: list[list[Any]] = []
    clock = FakeClock()  # never advances: only an urgent event sends anything
    b = batcher(sent, clock)
    b.emit(step(1))
    b.emit(step(2))
    assert sent == []
    end = finished()
    b.emit(end)
    assert sent == [[step(1), step(2), end]]


@pytest.mark.parametrize(
    "event",
    [
        StoreBusy(run_id=1, waiting=True, waited_s=2.5),
        EpochEnd(
            epoch=1,
            step=2,
            train_loss=1,
            train_accuracy=0.5,
            val_loss=1,
            val_accuracy=0.5,
            epoch_s=1,
            images_per_s=1e3,
        ),
    ],
    ids=["store-busy", "epoch"],
)
def test_what_the_window_shows_at_once_is_not_held_back(event: Any) -> None:
    sent: list[list[Any]] = []
    b = batcher(sent, FakeClock())
    b.emit(step(1))
    b.emit(event)
    assert sent == [[step(1), event]]


def test_a_system_sample_waits_for_the_batch() -> None:
    sent: list[list[Any]] = []
    b = batcher(sent, FakeClock())
    b.emit(SystemSampled(time=1.0, values={"cpu.percent": 5.0}))
    assert sent == []
    b.close()
    assert len(sent) == 1


def test_nothing_buffered_is_lost_when_the_job_raises() -> None:
    sent: list[list[Any]] = []
    with pytest.raises(RuntimeError, match="broke"), batcher(sent, FakeClock()) as b:
        for n in range(1, 6):
            b.emit(step(n))
        raise RuntimeError("broke")
    assert [[e.step for e in m] for m in sent] == [[1, 2, 3, 4, 5]]
    b.emit(step(6))  # after close: sent alone, at once
    assert sent[-1] == [step(6)]


def test_steps_before_a_long_pause_are_sent_without_waiting_for_the_next_event() -> None:
    """Validation can take seconds with no event: the flusher thread sends what waits."""
    sent: list[list[Any]] = []
    arrived = threading.Event()

    def send(batch: list[Any]) -> None:
        sent.append(batch)
        if any(getattr(e, "kind", "") == "step" for e in batch):
            arrived.set()

    clock = FakeClock()
    b = EventBatcher(send, interval_s=0.0625, urgent=lambda e: e.kind == "finished", clock=clock)
    try:
        b.emit(step(1))  # not due on this clock: buffered, and then no event comes
        assert sent == []
        clock.now += 0.0625  # the flusher, waking at least every 0.0625 s, finds it due
        assert arrived.wait(timeout=10.0), "the buffered step was never sent"
        assert [e.step for m in sent for e in m] == [1]
    finally:
        b.close()


def test_a_child_that_raises_still_sends_what_it_buffered(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """child_main closes its batcher in a finally: a job that dies sends all it emitted."""
    spec = RunSpec.from_dict({"train": {"device": "cpu"}})
    with RunStore.open(db_path) as store:
        run_id = create_run(store, spec)

    def broken_job(*args: Any, emit: Any, **kwargs: Any) -> None:
        for n in range(1, 6):
            emit(step(n))
        raise RuntimeError("the store vanished")

    monkeypatch.setattr(job, "run_job", broken_job)
    reader, writer = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    # A long interval: only the close at the end can have sent the steps.
    with pytest.raises(RuntimeError, match="the store vanished"):
        child_main(spec.to_json(), str(db_path), run_id, writer, stop, send_every_s=3600.0)
    assert reader.poll(5.0)
    assert [e.step for e in reader.recv()] == [1, 2, 3, 4, 5]
    writer.close()
    reader.close()
