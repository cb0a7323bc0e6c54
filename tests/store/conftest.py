"""Fixtures for the store tests: a throwaway PostgreSQL cluster, and a database per test.

The cluster is started once per test session (per xdist worker), and only when a test asks
for it. Missing server binaries fail the tests that need them, loudly: CI installs them
(.ci/run), and a skipped backend would pass unseen.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.pg_cluster import Cluster, MissingServer


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's PostgreSQL cluster (see pg_cluster.py), stopped and deleted at the end."""
    missing = None
    try:
        cluster = Cluster.start()
    except MissingServer as exc:
        missing = str(exc)
    if missing is not None:  # outside the except block: one clean message, no chained trace
        pytest.fail(missing, pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """The address of a new, empty database, so every test starts from nothing."""
    return pg_cluster.new_database()
