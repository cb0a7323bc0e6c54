"""``python -m tests.e2e.lab_worker ARGS``: the ``cnn-lab`` command line, with one difference
when ``$CNN_LAB_E2E_HOLD`` names a file: the worker's first trial trains for real until its
first step, then writes ``{"run_id": …, "pid": …}`` to that file and holds there for ever.

Its run stays "running" with a live lease (the job's writer thread heartbeats on), so a test
can kill the worker at a moment it chose, while it holds a trial, rather than at whatever
moment a real training happens to be in. Everything else is the real command.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HOLD_ENV = "CNN_LAB_E2E_HOLD"


def holding_trainer(hold: Path) -> Any:
    """``run_job``, whose first StepEnd writes ``hold`` and then never returns."""
    from cnn_lab.engine.jobs.job import run_job
    from cnn_lab.engine.train.events import StepEnd

    def train(spec: Any, db_path: Any, run_id: int | None = None, **kwargs: Any) -> Any:
        emit = kwargs.pop("emit")

        def hold_at_first_step(event: Any) -> None:
            emit(event)
            if isinstance(event, StepEnd):
                partial = hold.with_suffix(".partial")
                partial.write_text(json.dumps({"run_id": run_id, "pid": os.getpid()}))
                partial.replace(hold)  # whole or absent, never half written
                while True:
                    time.sleep(3600)

        return run_job(spec, db_path, run_id, emit=hold_at_first_step, **kwargs)

    return train


def main(argv: list[str]) -> int:
    hold = os.environ.get(HOLD_ENV)
    if hold:
        from cnn_lab.engine.search import study

        trainer = holding_trainer(Path(hold))
        study._run_job = lambda: trainer  # the trainer a sweep uses when none is given
    from cnn_lab.engine.cli.main import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
