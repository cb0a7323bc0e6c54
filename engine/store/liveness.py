"""How the store tells a live job from a dead one: the lease's length and this machine's name.

A running run holds a lease: its job heartbeats about once a second (writer.py), and a run
whose heartbeat is older than the lease is crashed by whoever reads the store next (SQLite's
``RunStore._is_gone``, PostgreSQL's lease.py, on the server's clock). On the machine that ran
it a run is also crashed at once when its process is gone, which is why the store records
each run's host. A sweep's trials are judged by the same lease (search/storage.py), so a run
and its trial never disagree about whether a worker on another machine is alive.

Two environment variables, read each time they are needed:

``CNN_LAB_LEASE_S``
    Seconds without a heartbeat after which a run is crashed (default 30; at least
    ``MIN_LEASE_S``, since jobs heartbeat about once a second). Shorter notices a killed
    worker sooner and risks crashing a job whose machine stalls for longer; tests shorten it.

``CNN_LAB_STORE_WAIT_S``
    Seconds a job waits for a store's server that cannot be reached (a lab's PostgreSQL
    restarting, a network gone) before it fails its run with a sentence (default 300): its
    metric writer keeps the points meanwhile (writer.py), and its own calls are tried again
    (patient.py). Longer for flaky networks.

``CNN_LAB_HOST``
    The name this machine's jobs and sweep workers record as their host (default: the
    machine's hostname). Give each container, or each test process that plays another
    machine, a name of its own; two machines must never share one, since a run recorded on
    "this" host whose process is missing here is crashed without waiting for its lease.
"""

from __future__ import annotations

import logging
import math
import os
import socket

log = logging.getLogger(__name__)

LEASE_ENV_VAR = "CNN_LAB_LEASE_S"
HOST_ENV_VAR = "CNN_LAB_HOST"

DEFAULT_LEASE_S = 30.0
"""How long a run may go without a heartbeat before it is crashed, unless the variable says."""

MIN_LEASE_S = 2.0
"""The shortest lease allowed: two heartbeats (jobs heartbeat about once a second)."""


STORE_WAIT_ENV = "CNN_LAB_STORE_WAIT_S"

STORE_GONE_GIVE_UP_S = 300.0
"""How long a job waits for its store's server, unless ``STORE_WAIT_ENV`` says."""


def store_wait_s() -> float:
    """How long to wait for an unreachable server: ``$CNN_LAB_STORE_WAIT_S`` when it is a
    number of seconds, else ``STORE_GONE_GIVE_UP_S``."""
    text = os.environ.get(STORE_WAIT_ENV, "").strip()
    if text:
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
        log.warning("%s=%r is not a number of seconds; ignoring it.", STORE_WAIT_ENV, text)
    return STORE_GONE_GIVE_UP_S


def lease_s() -> float:
    """The lease's length in seconds: ``$CNN_LAB_LEASE_S`` if it is a number (raised to
    ``MIN_LEASE_S``), else ``DEFAULT_LEASE_S``."""
    text = os.environ.get(LEASE_ENV_VAR, "").strip()
    if not text:
        return DEFAULT_LEASE_S
    try:
        value = float(text)
    except ValueError:
        log.warning(
            "%s=%r is not a number of seconds; using %s", LEASE_ENV_VAR, text, DEFAULT_LEASE_S
        )
        return DEFAULT_LEASE_S
    if value != value:  # NaN
        return DEFAULT_LEASE_S
    return max(MIN_LEASE_S, value)


def this_host() -> str:
    """The name runs and sweep trials record as their host: ``$CNN_LAB_HOST`` or the
    machine's hostname."""
    return os.environ.get(HOST_ENV_VAR, "").strip() or socket.gethostname()


__all__ = [
    "DEFAULT_LEASE_S",
    "HOST_ENV_VAR",
    "LEASE_ENV_VAR",
    "MIN_LEASE_S",
    "STORE_GONE_GIVE_UP_S",
    "STORE_WAIT_ENV",
    "lease_s",
    "store_wait_s",
    "this_host",
]
