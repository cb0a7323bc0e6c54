"""The optimize process: run ``optimize`` in a child and report over a pipe.

The window's Optimize action trains for minutes, so it runs in a child process
(multiprocessing "spawn"), as training jobs and tuners do: training never holds the GUI's
interpreter lock, and a crash or an out-of-memory kill ends only the child.

The child speaks in plain tuples, so nothing but builtins crosses the pipe:

- ``("phase", phase)`` once as each phase first reports, never coalesced, so the window
  marks every phase even when one ends within a tenth of a second;
- ``("progress", phase, stage, done, total, elapsed_s, budget_s)`` as it works (the window
  keeps the latest, about ten a second);
- ``("result", result_dict)`` once, ``OptimizeResult.to_dict()``: after Stop too, since
  ``optimize`` returns the best run so far when asked to stop;
- ``("error", message, hint)`` once for a refusal or a failure; ``("cancelled",)`` when it
  stopped before anything was recorded.

This module imports neither torch nor Qt at import time: the GUI imports it to name the
child's entry point, and torch loads inside the child, when the tuners run.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from cnn_lab.engine.errors import Cancelled, UserError
from cnn_lab.engine.jobs.child_link import ParentLink, report_failure
from cnn_lab.engine.specs import ArchitectureSpec, RunSpec
from cnn_lab.engine.specs.architecture import memory_hint


def oom_hint(request: dict[str, Any]) -> str:
    """What to change after optimizing ran out of memory: what the network can lower (a
    timm or module network has no width), and the candidates that may be the culprit."""
    architecture: ArchitectureSpec | None
    try:
        architecture = RunSpec.from_json(request["spec_json"]).architecture
    except (KeyError, TypeError, ValueError, UserError):  # a bad request: not this error
        architecture = None
    lower = memory_hint(architecture)
    if request.get("widths") or request.get("networks"):
        return f"{lower} Or give fewer or smaller candidate widths and networks."
    return lower


def planted_kwargs(name: str | None) -> dict[str, Any]:
    """Extra ``optimize`` arguments from ``"module:function"`` (tests plant fast tuners).

    Named rather than passed, because a spawned child cannot receive closures; ``None``
    (every real use) means the real tuners and the real clock.
    """
    if not name:
        return {}
    module, _, function = name.partition(":")
    return dict(getattr(importlib.import_module(module), function)())


def optimize_child(
    request: dict[str, Any],
    db_path: str,
    conn: Connection,
    stop_event: MpEvent,
    planted: str | None = None,
) -> None:
    """Run ``optimize`` for ``request`` (spec_json, budget_s, goal, target, widths, networks).

    Stop (the event, or the parent going away) reaches ``optimize`` as its ``should_stop``,
    which ends the current step and returns the best run so far with its decisions.
    """
    logging.basicConfig(
        level=logging.INFO, format="[optimize %(process)d] %(levelname)s %(message)s"
    )
    link = ParentLink(conn, stop_event)
    send = link.send
    seen: set[str] = set()

    def progress(p: Any) -> None:
        if p.phase not in seen:
            seen.add(p.phase)
            send(("phase", str(p.phase)))
        send(("progress", str(p.phase), str(p.stage), int(p.done), int(p.total),
              float(p.elapsed_s), float(p.budget_s)))  # fmt: skip

    try:
        from cnn_lab.engine.optimize.runner import optimize

        result = optimize(
            RunSpec.from_json(request["spec_json"]),
            float(request["budget_s"]),
            request.get("goal", "accuracy"),
            db_path=db_path,
            target=request.get("target"),
            widths=tuple(request.get("widths", ())),
            networks=tuple(request.get("networks", ())),
            should_stop=link.should_stop,
            progress=progress,
            **planted_kwargs(planted),
        )
    except Cancelled:
        send(("cancelled",))
    except Exception as exc:  # the parent must always hear how it ended
        report_failure(
            exc,
            send,
            subject="Optimizing",
            out_of_memory=("Optimizing ran out of memory.", oom_hint(request)),
        )
    else:
        send(("result", result.to_dict()))
    finally:
        with contextlib.suppress(OSError):
            conn.close()


__all__ = ["optimize_child", "planted_kwargs"]
