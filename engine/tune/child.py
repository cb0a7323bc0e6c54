"""The tuning process: run one tuner in a child and report over a pipe.

Tuners train for seconds to minutes and may run the device out of memory, so the Tune
panel runs each one in a child process (multiprocessing "spawn"), as the window runs
training jobs: a crash, an out-of-memory kill or a CUDA fault ends only the child.

The child speaks three kinds of message, all plain tuples so nothing but builtins crosses
the pipe:

- ``("progress", stage, done, total)`` as the tuner works;
- ``("result", result_dict)`` once, with the tuner's ``to_dict()``;
- ``("error", message, hint)`` once, for a mistake the person can fix (a ``UserError``) or
  for anything else ("Tuning stopped with an internal error: ..."; the traceback goes to
  the log); ``("cancelled",)`` when it stopped because it was asked to.

This module imports neither torch nor Qt at import time: the GUI imports it to name the
child's entry point, and torch loads only inside the child, with the tuner's module.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

from cnn_lab.engine.errors import Cancelled, UserError
from cnn_lab.engine.jobs.child_link import ParentLink, report_failure
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.specs.architecture import memory_hint

log = logging.getLogger(__name__)

Send = Callable[[tuple[Any, ...]], None]


def oom_hint(spec: RunSpec | None) -> str:
    """What to change after a tuner ran out of memory: what the network can lower (a timm
    or module network has no width), and the finder that measures what fits."""
    lower = memory_hint(None if spec is None else spec.architecture)
    return f"{lower} The batch-size finder measures the largest batch that fits."


@dataclass(frozen=True)
class Tuner:
    """Where a tuner lives, named so that importing this registry loads no torch."""

    module: str
    function: str
    title: str
    """What the person calls it, for sentences such as "The LR range test has no option x"."""

    def load(self) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), self.function)


TUNERS: dict[str, Tuner] = {
    "lr": Tuner("cnn_lab.engine.tune.lr_finder", "lr_range_test", "LR range test"),
    "batch-size": Tuner("cnn_lab.engine.tune.batch_size", "find_max_batch", "batch-size finder"),
    "speed": Tuner("cnn_lab.engine.tune.speed", "advise", "speed advisor"),
    "epoch-time": Tuner("cnn_lab.engine.tune.epoch_time", "measure_epoch_time", "epoch-time probe"),
}
"""Tuner kind (as the panel and ``cnn-lab tune`` name it) -> the function that runs it."""


def tuner_for(kind: str) -> Tuner:
    """The registry entry for ``kind``, or a sentence listing the kinds there are."""
    try:
        return TUNERS[kind]
    except KeyError:
        raise UserError(
            f"There is no tuner called {kind!r}.", hint=f"Choose one of {', '.join(TUNERS)}."
        ) from None


def run_tuner(
    kind: str,
    spec: RunSpec,
    options: dict[str, Any],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> dict[str, Any]:
    """Run tuner ``kind`` on ``spec`` with ``options`` and return its result as a dict.

    Options are checked against the tuner's signature first, so a misspelt option is a
    sentence for the person rather than a TypeError deep in the tuner. The result gains a
    ``device`` entry when the tuner's own dict has none, so the panel can say where the
    measurement was taken ("probed on cuda:0") rather than echo "auto".
    """
    tuner = tuner_for(kind)
    function = tuner.load()
    try:
        inspect.signature(function).bind(spec, **options)
    except TypeError as exc:
        raise UserError(
            f"The {tuner.title} does not take these options: {exc}.",
            hint="Check the option names against `cnn-lab tune --help`.",
        ) from None
    result = function(spec, should_stop=should_stop, progress=progress, **options)
    data = dict(result.to_dict())
    if "device" not in data:
        data["device"] = _device_name(spec)
    return data


def _device_name(spec: RunSpec) -> str:
    """The device the spec's "auto" and friends resolve to here (the tuner used the same)."""
    from cnn_lab.engine.train.devices import resolve_device

    try:
        return str(resolve_device(spec.train.device))
    except UserError:
        return spec.train.device


def tune_child(
    kind: str,
    spec_json: str,
    options: dict[str, Any],
    conn: Connection,
    stop_event: MpEvent,
) -> None:
    """The tuning process: run ``kind`` and send progress, then a result or an error.

    If the parent dies (the pipe breaks, or this process is re-parented) the tuner is asked
    to stop at its next check, since nobody is left to read what it finds.
    """
    logging.basicConfig(level=logging.INFO, format="[tune %(process)d] %(levelname)s %(message)s")
    link = ParentLink(conn, stop_event)
    send, should_stop = link.send, link.should_stop

    def progress(stage: str, done: int, total: int) -> None:
        send(("progress", str(stage), int(done), int(total)))

    spec: RunSpec | None = None
    try:
        spec = RunSpec.from_json(spec_json)
        result = run_tuner(kind, spec, options, should_stop=should_stop, progress=progress)
    except Cancelled:
        send(("cancelled",))
    except Exception as exc:  # the parent must always hear how the tuner ended
        report_failure(
            exc,
            send,
            subject="Tuning",
            out_of_memory=("The tuner ran out of memory.", oom_hint(spec)),
        )
    else:
        send(("result", result))
    finally:
        with contextlib.suppress(OSError):
            conn.close()
