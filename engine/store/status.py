"""The lifecycle of a run, as the plain strings stored in ``runs.status``.

Plain strings (not an Enum) because they are written to SQLite, sent over pipes and shown in
tables as they are; the sets below are what code should branch on.
"""

from __future__ import annotations

QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
STOPPED = "stopped"
FAILED = "failed"
CRASHED = "crashed"

#: A run that may still change: a job owns it or will own it.
ACTIVE: frozenset[str] = frozenset({QUEUED, RUNNING})
#: A run that is over; nothing writes its status again.
FINAL: frozenset[str] = frozenset({COMPLETED, STOPPED, FAILED, CRASHED})
#: Every status the store accepts.
ALL: frozenset[str] = ACTIVE | FINAL

__all__ = [
    "ACTIVE",
    "ALL",
    "COMPLETED",
    "CRASHED",
    "FAILED",
    "FINAL",
    "QUEUED",
    "RUNNING",
    "STOPPED",
]
