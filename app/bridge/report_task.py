"""Writing a run's or a sweep's report in the background.

The report is written by ``engine/report`` (it reads the store, may load torch to measure the
architecture and decode thumbnails), so it always runs on the thread pool; the panel only
hears the sentence that says where the file went, or why it did not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnn_lab.app.bridge.task import Task


def report_task(
    db_path: str | Path,
    out: str,
    *,
    run_id: int | None = None,
    sweep: str | int | None = None,
    fmt: str | None = None,
    parent: Any = None,
) -> Task:
    """A Task (not yet started) that writes the report and finishes with its sentence."""

    def work(progress: Any, should_stop: Any) -> str:
        from cnn_lab.engine.report.formats import write_report
        from cnn_lab.engine.store import open_store

        progress("writing the report", 0, 1)
        with open_store(db_path) as store:
            written = write_report(store, out, run_id=run_id, sweep=sweep, fmt=fmt)
        return written.sentence()

    return Task(work, name="report", parent=parent)
