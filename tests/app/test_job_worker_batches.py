"""The job thread reads a child's pipe whether the child sends single events or batches."""

from __future__ import annotations

import multiprocessing

from cnn_lab.app.bridge.job_worker import JobWorker


def test_the_job_thread_takes_single_events_and_batches_in_order() -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    writer.send("one")  # a child that sends each event alone (a tuner's, an old job's)
    writer.send(["two", "three"])  # a job's child batching its events
    writer.send(("error", "message", "hint"))  # a tuple is one message, never a batch
    writer.send([])
    pending: list[object] = []
    assert JobWorker._drain(reader, pending) is True
    assert pending == ["one", "two", "three", ("error", "message", "hint")]
    writer.close()
    assert JobWorker._drain(reader, pending) is False  # the child is gone
    reader.close()
