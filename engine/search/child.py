"""The sweep process: run a SearchSpec's trials in a child and report each over a pipe.

A sweep trains one run after another for minutes to hours, so the Sweep panel runs it in a
child process (multiprocessing "spawn"), as the window runs training jobs and the Tune panel
runs tuners: a crash, an out-of-memory kill or a CUDA fault ends only the child, and the
GUI's interpreter lock is never held by training.

The child speaks in plain tuples, so nothing but builtins crosses the pipe:

- ``("slots", slots, sentence)`` first: where the trials train at once (slots.py's plan,
  within the slots the app's job queue has free);
- ``("trial", outcome_dict)`` each time a trial finishes (``TrialOutcome.to_dict()``);
- then once ``("result", result_dict)`` (``SweepResult.to_dict()`` plus ``stopped``, whether
  Stop ended it early, and ``importance``, each parameter's share of the value's variance,
  empty when it cannot be computed yet), or ``("error", message, hint)``.

Stop sets the shared event: the trial in progress ends after its current step (it is queued
again for when the same sweep resumes) and the study is summarised as it stands.

This module imports neither torch, Optuna nor Qt at import time: the GUI imports it to name
the child's entry point, and the heavy modules load only inside the child.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from cnn_lab.engine.jobs.child_link import ParentLink, report_failure
from cnn_lab.engine.search.spec import SearchSpec

log = logging.getLogger(__name__)


MIN_TRIALS_FOR_IMPORTANCE = 3
"""Fewer complete trials than this say nothing about which parameter matters."""


def param_importance(
    search: SearchSpec, db_path: str | Path, storage: str | None = None
) -> dict[str, float]:
    """Each searched path's importance (summing to 1), or {} when it cannot be known yet.

    Optuna needs several complete trials that differ in more than one value; anything short
    of that (or a study it cannot load) is "not yet" rather than an error, because the
    sweep's result is worth showing either way.
    """
    import optuna

    from cnn_lab.engine.search import storage as stg

    try:
        study = optuna.load_study(
            study_name=search.study_name(), storage=stg.open_storage(storage, db_path)
        )
        complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
            return {}
        found = optuna.importance.get_param_importances(study)
    except Exception as exc:  # importance is a bonus: never fail the sweep over it
        log.info("no parameter importance: %s", exc)
        return {}
    return {str(path): float(share) for path, share in found.items()}


def sweep_child(
    search_json: str,
    db_path: str,
    storage: str | None,
    conn: Connection,
    stop_event: MpEvent,
    sample_system: bool = True,
    cpu_too: bool = False,
    allowed: list[str] | None = None,
) -> None:
    """The sweep process: run ``search_json`` on ``db_path``, send each trial, then the end.

    The trials train on the slots planned here for this machine (``cpu_too`` adds one on
    the CPU beside the GPUs; ``allowed`` are the slots free of other jobs).

    If the parent dies (the pipe breaks or this process is re-parented) the sweep stops at
    its next check, since nobody is left to read what it finds.
    """
    logging.basicConfig(level=logging.INFO, format="[sweep %(process)d] %(levelname)s %(message)s")
    link = ParentLink(conn, stop_event)
    send: Callable[[tuple[Any, ...]], None] = link.send
    try:
        from cnn_lab.engine.search.slots import plan_for
        from cnn_lab.engine.search.study import run_sweep

        search = SearchSpec.from_json(search_json)
        plan = plan_for(search, cpu=cpu_too, allowed=allowed)
        send(("slots", list(plan.slots), plan.describe()))
        result = run_sweep(
            search,
            db_path,
            storage=storage,
            should_stop=link.should_stop,
            progress=lambda outcome: send(("trial", outcome.to_dict())),
            sample_system=sample_system,
            slots=plan.slots,
        )
        data = result.to_dict()
        data["stopped"] = link.should_stop()
        data["importance"] = param_importance(search, db_path, storage)
    except Exception as exc:  # the parent must always hear how the sweep ended
        report_failure(exc, send, subject="The sweep")
    else:
        send(("result", data))
    finally:
        with contextlib.suppress(OSError):
            conn.close()


__all__ = ["param_importance", "sweep_child"]
