"""A job's own store calls wait for a server that went away, as its metric writer does.

A training job writes most of what it records through the batched writer (writer.py), which
keeps points while the lab's PostgreSQL restarts and gives up only after ``store_wait_s()``.
Its few direct calls (the summary at the start, each checkpoint's record, the final weights,
the end of the run) would otherwise fail the run at the first refused connection: a server
restart that happens to fall on an epoch's checkpoint would lose a run that the writer had
carried through. ``PatientStore`` wraps the job's store and tries such a call again while the
store is unreachable (``StoreUnreachable``), within the same bound, then lets the last error
through with how long it waited.

Only calls that are safe to make twice are retried: each one sets a state (a summary, the
run's status, the one artifact of a kind) rather than adding a row, so a call whose commit
reached the server before the connection dropped does no harm when it is made again. Every
other call goes through once, as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from cnn_lab.engine.errors import StoreUnreachable
from cnn_lab.engine.store.liveness import store_wait_s

if TYPE_CHECKING:
    from cnn_lab.engine.store.repository import RunRepository

log = logging.getLogger(__name__)

RETRIED = frozenset(
    {
        "get_run",
        "has_artifact",
        "mark_running",
        "update_summary",
        "set_artifact",
        "truncate_metrics",
        "finish_run",
        "heartbeat",
    }
)
"""The repository's calls that set a state, so that making one twice is harmless."""

PAUSES_S = (0.5, 1.0, 2.0, 5.0, 10.0)
"""Between tries: quick while a restarting server comes back, then every 10 s."""


class PatientStore:
    """``store``'s methods, the ``RETRIED`` ones tried again while the store is unreachable."""

    def __init__(self, store: Any, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._store = store
        self._sleep = sleep

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name not in RETRIED or not callable(attribute):
            return attribute

        def patiently(*args: Any, **kwargs: Any) -> Any:
            return self._patiently(name, attribute, args, kwargs)

        return patiently

    def _patiently(
        self, name: str, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        started = time.monotonic()
        tries = 0
        while True:
            try:
                return call(*args, **kwargs)
            except StoreUnreachable as exc:
                waited = time.monotonic() - started
                limit = store_wait_s()
                if waited >= limit:
                    raise StoreUnreachable(
                        f"{exc.message} It stayed unreachable for {waited:.0f} s.",
                        exc.hint,
                    ) from exc
                pause = min(PAUSES_S[min(tries, len(PAUSES_S) - 1)], limit - waited)
                log.warning("%s: %s Trying again in %.1f s.", name, exc, pause)
                tries += 1
                self._sleep(pause)

    def __enter__(self) -> PatientStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._store.close()


def patient(store: RunRepository) -> RunRepository:
    """``store`` with its ``RETRIED`` calls made patient (typed as the store it wraps)."""
    return cast("RunRepository", PatientStore(store))


__all__ = ["PAUSES_S", "RETRIED", "PatientStore", "patient"]
