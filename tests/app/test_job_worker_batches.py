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
    worker = JobWorker(7, "{}", "unused.sqlite")
    emitted: list[tuple[int, object]] = []
    worker.events.connect(lambda run_id, events: emitted.append((run_id, list(events))))
    assert worker._drain(reader) is True
    worker._flush(None)  # the child is gone: everything held goes out in one batch
    assert emitted == [(7, ["one", "two", "three", ("error", "message", "hint")])]
    writer.close()
    assert worker._drain(reader) is False  # the child is gone
    worker._flush(None)
    assert len(emitted) == 1  # nothing more to send
    reader.close()
