"""Errors a person can cause, carried as a sentence that says what happened and what to do.

Anything raised as a ``UserError`` reaches the person verbatim (a CLI line, a dialog, a
run's reason) and never as a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in input the person controls: a spec, an argument, a file."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class SpecError(UserError):
    """A spec that does not validate; the message names each bad field."""


class StoreError(UserError):
    """The run store cannot be opened or written as asked."""


class StoreUnreachable(StoreError):
    """The store's server cannot be reached now (refused, timed out, connection lost).

    Unlike other store errors this one may pass by itself: whoever can wait (the window's
    store link, a job's metric writer) tries again instead of giving up at once.
    """


class RunNotFound(UserError):
    """A run id that is not in the store."""


class Cancelled(Exception):
    """The person asked a long operation (an import, a cache build) to stop; not an error."""


class DataError(UserError):
    """A dataset that cannot be imported or trained on as it is; the message says why."""


class ModelError(UserError):
    """A network that cannot be built; ``path`` locates the layer (0-based, blocks nested)."""

    def __init__(self, message: str, hint: str | None = None, path: tuple[int, ...] = ()) -> None:
        super().__init__(message, hint)
        self.path = path


def internal_error(subject: str, exc: BaseException, *, with_type: bool = True) -> str:
    """ "``subject`` stopped with an internal error: …" as one sentence (one full stop)."""
    detail = str(exc).strip().rstrip(".") or "no message"
    kind = f"{type(exc).__name__}: " if with_type else ""
    return f"{subject} stopped with an internal error: {kind}{detail}."
