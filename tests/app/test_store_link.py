"""The window's store link: one store, opened once on its own thread, answers on the GUI
thread, newest-wins listings, and a store that is slow or unreachable said in the status
line and retried instead of freezing the window."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cnn_lab.app import store_link
from cnn_lab.app.store_link import StoreLink
from cnn_lab.engine.errors import StoreUnreachable
from cnn_lab.engine.store import RunStore
from tests.app.settle import record_store_opens


@pytest.fixture
def link(qtbot, db_path: Path) -> StoreLink:  # type: ignore[no-untyped-def]
    with RunStore.open(db_path) as store:
        store.create_run(spec_json="{}", spec_hash="a", name="first")
    made = StoreLink(str(db_path))
    yield made
    made.close()


def test_calls_run_in_order_on_one_store_off_the_gui_thread(
    qtbot, link: StoreLink, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    opened = record_store_opens(monkeypatch)
    answers: list[Any] = []
    threads: list[str] = []

    def work(n: int) -> Any:
        def read(store: Any) -> Any:
            threads.append(threading.current_thread().name)
            return n, [r.name for r in store.list_runs()]

        return read

    link.call(lambda store: store.rename_run(1, "renamed"))
    for n in range(5):
        link.call(work(n), answers.append)
    qtbot.waitUntil(link.idle, timeout=10_000)
    assert answers == [(n, ["renamed"]) for n in range(5)]  # the edit came first, in order
    assert set(threads) == {"cnn-lab-store"}
    assert opened == ["cnn-lab-store"]  # opened once, by the link's thread


def test_a_newer_call_with_the_same_key_replaces_the_queued_one(qtbot, link: StoreLink) -> None:  # type: ignore[no-untyped-def]
    release = threading.Event()
    ran: list[int] = []
    answered: list[int] = []
    link.call(lambda store: release.wait(10))  # holds the thread while the listings queue

    def listing(n: int) -> Any:
        return lambda store: ran.append(n) or n

    for n in range(4):
        link.call(listing(n), answered.append, key="listing")
    release.set()
    qtbot.waitUntil(link.idle, timeout=10_000)
    assert ran == [3] and answered == [3]


def test_a_refusal_goes_to_failed_or_to_the_status_line(qtbot, link: StoreLink) -> None:  # type: ignore[no-untyped-def]
    failures: list[str] = []
    link.call(lambda store: store.get_run(404), failed=failures.append)
    qtbot.waitUntil(link.idle, timeout=10_000)
    assert failures and "404" in failures[0]

    with qtbot.waitSignal(link.status, timeout=10_000) as said:
        link.call(lambda store: store.get_run(405))
    assert "405" in said.args[0]

    def boom(store: Any) -> None:
        raise ValueError("a bug in a panel")

    link.call(boom, failed=failures.append)
    qtbot.waitUntil(link.idle, timeout=10_000)
    assert failures[-1] == "ValueError: a bug in a panel"


def test_an_unreachable_store_is_said_and_retried_until_it_answers(
    qtbot, link: StoreLink, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(store_link, "RETRY_S", (0.05, 0.1))
    tries: list[float] = []
    statuses: list[str] = []
    link.status.connect(statuses.append)

    def flaky(store: Any) -> str:
        tries.append(time.monotonic())
        if len(tries) < 3:
            raise StoreUnreachable("cnn-lab could not reach the PostgreSQL server.")
        return "answered"

    answers: list[str] = []
    link.call(flaky, answers.append)
    qtbot.waitUntil(link.idle, timeout=10_000)
    assert answers == ["answered"] and len(tries) == 3
    assert statuses[0].startswith("cnn-lab could not reach the PostgreSQL server.")
    assert "Trying again in" in statuses[0]
    assert statuses[-1] == ""  # back: the line is cleared


def test_a_slow_call_is_said_while_it_runs(
    qtbot, link: StoreLink, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(store_link, "SLOW_S", 0.05)
    release = threading.Event()
    with qtbot.waitSignal(link.status, timeout=10_000) as said:
        link.call(lambda store: release.wait(10), what="the run list")
    assert said.args[0].startswith("Waiting for the run store (the run list)")
    release.set()
    with qtbot.waitSignal(link.status, timeout=10_000) as cleared:
        pass
    assert cleared.args[0] == ""


def test_closing_makes_the_edits_already_given(db_path: Path, qtbot) -> None:  # type: ignore[no-untyped-def]
    with RunStore.open(db_path) as store:
        run_id = store.create_run(spec_json="{}", spec_hash="a", name="before")
    link = StoreLink(str(db_path))
    link.call(lambda store: time.sleep(0.2))
    link.call(lambda store: store.rename_run(run_id, "after"))
    link.close()
    with RunStore.open(db_path) as store:
        assert store.get_run(run_id).name == "after"
    link.call(lambda store: store.rename_run(run_id, "ignored"))  # closed: nothing runs
    assert link.idle()


def test_another_location_is_opened_for_the_next_call(
    qtbot, link: StoreLink, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other.sqlite"
    with RunStore.open(other) as store:
        store.create_run(spec_json="{}", spec_hash="b", name="elsewhere")
    names: list[list[str]] = []
    link.call(lambda store: [r.name for r in store.list_runs()], names.append)
    qtbot.waitUntil(link.idle, timeout=10_000)
    link.set_location(str(other))
    link.call(lambda store: [r.name for r in store.list_runs()], names.append)
    qtbot.waitUntil(link.idle, timeout=10_000)
    assert names == [["first"], ["elsewhere"]]
