"""Store scale: 10,000 runs, a 1,000,000-point curve and one writer, on SQLite and PostgreSQL.

Fills a fresh store of each backend with ``--runs`` runs (each with a realistic spec and
summary, the size cnn-lab writes, a tenth of them tagged) and one run whose ``train.loss``
has ``--points`` points. Both stores are filled the same way, through the repository
protocol's bulk path (``load_rows``: ``executemany`` on SQLite, binary ``COPY`` on
PostgreSQL, the roll-ups built as the points go in), then each is timed on:

- ``list_runs``: the engine's query and record parsing for every run, against the floor of
  a bare ``SELECT`` of the same rows (the ratio is what parsing and records cost);
- a search over them (``tag:`` plus a hyperparameter range, sorted by a result), in SQL
  through ``query_runs``, against the naive baseline of listing every run and filtering the
  parsed specs in Python;
- the long run's curve: ``curve`` (what the Monitor draws: two points per bucket, 2,000
  buckets) against loading every point with ``metrics`` (the baseline);
- metric writes from one writer: ``BatchedWriter`` (engine/store/writer.py, a job's write
  path) given ``--write-points`` points as a training loop gives them, ``metrics()`` with
  ``--keys`` keys per step, timed from the first call until ``flush()`` returns;
- with the window (unless ``--no-gui``): the Runs panel's ``refresh`` with that many runs
  and showing the search (Qt offscreen, timed until the table is filled), and the Monitor
  drawing the long run from the store.

PostgreSQL runs on a throwaway cluster started for the benchmark (tests/store/pg_cluster.py,
which the tests use too: initdb and pg_ctl on a Unix socket in a temporary folder, fsync off)
unless ``--pg URL`` names an empty database to fill (it is left filled). The JSON has a
section per backend, the PostgreSQL/SQLite ratios, and ``goals`` (issue 21): listing and the
curve within 2x of SQLite's times, and PostgreSQL writes at 50,000 points a second or more.
The best of ``--repeat`` timings counts, so one hiccup does not.

    python benchmarks/store_scale.py [--runs 10000] [--points 1000000] [--repeat 3]
        [--backends sqlite postgres] [--pg postgresql://USER@HOST/EMPTY_DB] [--no-gui]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make tests.store.pg_cluster importable
    sys.path.insert(0, str(ROOT))

BACKENDS = ("sqlite", "postgres")

SEARCH = "tag:keep lr<0.05 sort:-best_val_accuracy"
"""The Runs browser search timed: a tag, a hyperparameter range, sorted by a result."""

READ_GOAL = 2.0
"""Issue 21: PostgreSQL lists the runs and loads the curve within this factor of SQLite."""

WRITE_GOAL = 50_000
"""Issue 21: one writer stores at least this many points a second on PostgreSQL."""


def best_of(repeat: int, action: Callable[[], Any]) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


# ------------------------------------------------------------------------------ filling


def run_rows(runs: int, points: int) -> Iterator[tuple[Any, ...]]:
    """``runs`` completed runs and the long one (id ``runs + 1``), as ``tables.TABLES["runs"]``
    rows; the same rows (seeded) for every backend."""
    from cnn_lab.engine.specs import RunSpec
    from cnn_lab.engine.store import tables

    assert tables.TABLES["runs"] == (
        "id", "experiment_id", "name", "status", "reason", "hint", "spec_json", "spec_hash",
        "dataset", "model", "device", "host", "pid", "created_at", "started_at", "ended_at",
        "heartbeat_at", "summary_json", "note", "archived",
    )  # fmt: skip
    spec = RunSpec.from_dict({"dataset": {"source": "sample:shapes"}})
    spec_dict, spec_hash = json.loads(spec.to_json()), spec.spec_hash()

    def spec_json(lr: float) -> str:
        spec_dict["train"]["lr"] = lr
        return json.dumps(spec_dict)

    rng = random.Random(0)
    now = time.time()
    for i in range(1, runs + 1):
        summary = {
            "epochs": 10,
            "best_val_accuracy": rng.random(),
            "train_images_per_s": rng.uniform(500, 5000),
            "device": "cpu",
            "classes": [f"class {c}" for c in range(10)],
            "bottleneck": {"verdict": "compute-bound", "evidence": {"x": 1}},
        }
        lr = rng.choice([0.3, 0.1, 0.03, 0.01, 0.003])
        model = rng.choice(["small_cnn", "resnet9", "resnet18"])
        created = now - 86_400 - i
        yield (
            i, None, f"run {i}", "completed", None, None, spec_json(lr), spec_hash,
            "sample:shapes", model, "cpu", "bench", None, created, created, created + 60,
            created + 60, json.dumps(summary), "", 0,
        )  # fmt: skip
    summary = json.dumps({"epochs": points // 10_000, "device": "cpu"})
    yield (
        runs + 1, None, "long", "completed", None, None, spec_json(0.1), spec_hash,
        "sample:shapes", "small_cnn", "cpu", "bench", None, now - 3600, now - 3600, now,
        now, summary, "", 0,
    )  # fmt: skip


def fill(store: Any, runs: int, points: int) -> int:
    """Write the runs, their tags and the long run's points through ``load_rows``; the long
    run's id. A tenth of the runs carry ``keep`` (as a person marks the ones worth keeping)
    and another tenth ``baseline``."""
    store.load_rows("runs", run_rows(runs, points))
    tags = [(i, "keep" if i % 10 == 0 else "baseline") for i in range(1, runs + 1) if i % 10 < 2]
    store.load_rows("run_tags", tags)
    long_run = runs + 1
    now = time.time() - 3600
    store.load_rows(
        "metrics",
        (
            (long_run, s, s // 10_000, "train.loss", 2.0 / (1 + s / 1e4), now + s * 1e-3)
            for s in range(points)
        ),
    )
    return long_run


# ------------------------------------------------------------------------------ timing


def naive_search(store: Any, limit: int) -> list[Any]:
    """The baseline: list every run, then filter and sort the parsed specs in Python."""
    records = store.list_runs(limit=limit)
    chosen = [
        r
        for r in records
        if "keep" in r.tags and json.loads(r.spec_json)["train"]["lr"] < 0.05 and not r.archived
    ]
    return sorted(chosen, key=lambda r: -(r.summary.get("best_val_accuracy") or -1))


@contextlib.contextmanager
def bare_rows(store: Any, location: str) -> Iterator[Callable[[int], list[Any]]]:
    """A function reading the newest ``n`` runs' rows with a bare ``SELECT``, no records: the
    floor ``list_runs`` is measured against (the backend's own handle, benchmarks only)."""
    query = "SELECT * FROM runs ORDER BY created_at DESC LIMIT {}"
    if hasattr(store, "sqlite_db"):
        yield lambda n: store.sqlite_db.execute(query.format("?"), [n]).fetchall()
        return
    import psycopg

    from cnn_lab.engine.store.locations import connect_url

    with psycopg.connect(connect_url(location), autocommit=True) as conn:
        yield lambda n: conn.execute(query.format("%s"), [n]).fetchall()


def database_mb(store: Any, location: str) -> float:
    if hasattr(store, "sqlite_db"):
        return Path(location).stat().st_size / 2**20
    import psycopg

    from cnn_lab.engine.store.locations import connect_url

    with psycopg.connect(connect_url(location), autocommit=True) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return (row[0] if row else 0) / 2**20


def time_writes(location: str, points: int, keys: int, repeat: int) -> dict[str, Any]:
    """One writer, ``BatchedWriter``, fed ``points`` points ``keys`` per step as a training
    loop feeds it (each repeat into a new run); points per second until ``flush()`` returns,
    and how long the training thread spent in ``metrics()`` calls."""
    from cnn_lab.engine.store.locations import open_store
    from cnn_lab.engine.store.writer import BatchedWriter

    names = [f"train.k{k}" for k in range(keys)]
    steps = max(1, points // keys)
    best: tuple[float, float] | None = None
    for _ in range(repeat):
        with open_store(location) as store:
            run_id = store.create_run(spec_json="{}", spec_hash="bench", name="writer")
            store.mark_running(run_id, pid=os.getpid(), device="cpu")
        writer = BatchedWriter(location, run_id)  # opening the store is not timed
        try:
            started = time.perf_counter()
            for step in range(steps):
                writer.metrics(step, step // 1000, {k: 1.0 / (1 + step) for k in names})
            appended = time.perf_counter() - started
            if not writer.flush(timeout=600):
                raise RuntimeError(f"BatchedWriter did not flush: {writer.error}")
            elapsed = time.perf_counter() - started
        finally:
            writer.close()
        with open_store(location) as store:
            stored = sum(store.metric_keys(run_id).values())
            store.finish_run(run_id, "completed")
        assert stored == steps * keys, (stored, steps * keys)
        if best is None or elapsed < best[0]:
            best = (elapsed, appended)
    assert best is not None
    elapsed, appended = best
    return {
        "write_points": steps * keys,
        "write_keys_per_step": keys,
        "write_s": round(elapsed, 3),
        "write_append_calls_s": round(appended, 3),
        "write_points_per_s": round(steps * keys / elapsed),
    }


def settle(app: Any, state: Any) -> None:
    """Let Qt deliver what is pending, then wait until the window's store link (when the
    panels read through one, app/store_link.py) has answered every call, so a timing
    covers the read and the table filled, not only the asking."""
    app.processEvents()
    link = getattr(state, "store", None)
    idle = getattr(link, "idle", None)
    if idle is None:  # the panels read the store on the GUI thread
        return
    deadline = time.monotonic() + 300
    while not idle():
        if time.monotonic() > deadline:
            raise RuntimeError("The window's store link did not answer within 300 s.")
        time.sleep(0.0005)
        app.processEvents()
    app.processEvents()


def draw_stored_run(app: Any, state: Any, monitor: Any, store: Any, run_id: int) -> None:
    """The Monitor reading and drawing a stored run as the window has it do: through the
    window's store link where the panels have one (``read_for_monitor`` on the link's thread,
    drawn on the GUI thread), else ``show_stored_run(record, store)`` on the GUI thread."""
    from cnn_lab.app.panels import monitor_panel

    read_for_monitor = getattr(monitor_panel, "read_for_monitor", None)
    if read_for_monitor is not None and hasattr(getattr(state, "store", None), "call"):
        drawn: list[bool] = []

        def show(read: Any) -> None:
            monitor.show_stored_run(*read)
            drawn.append(True)

        state.store.call(lambda linked: read_for_monitor(linked, run_id), show)
        settle(app, state)
        assert drawn, "the Monitor was given nothing to draw"
    else:
        monitor.show_stored_run(store.get_run(run_id), store)
    monitor.repaint()
    app.processEvents()


def time_gui(location: str, long_run: int, repeat: int) -> dict[str, Any]:
    """The Runs panel refreshing and searching, and the Monitor drawing the long run, each
    timed until what it shows is on screen."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from cnn_lab.app.panels.monitor_panel import MonitorPanel
    from cnn_lab.app.panels.runs_panel import RunsPanel
    from cnn_lab.app.state import AppState
    from cnn_lab.engine.store.locations import open_store

    app = QApplication.instance() or QApplication(sys.argv[:1])
    state = AppState(location)
    panel = RunsPanel(state)
    panel.resize(1280, 800)
    panel.show()
    settle(app, state)

    def refresh() -> None:
        panel.refresh()
        settle(app, state)

    panel_s = best_of(repeat, refresh)
    listed = panel.model.rowCount()

    searches = []
    for _ in range(repeat):  # the search alone, from the full list each time
        started = time.perf_counter()
        panel.set_filter(SEARCH)
        settle(app, state)
        searches.append(time.perf_counter() - started)
        panel.set_filter("")
        settle(app, state)
    panel_search_s = min(searches)
    monitor = MonitorPanel(state)
    monitor.resize(1280, 800)
    monitor.show()
    with open_store(location) as store:
        monitor_s = best_of(repeat, lambda: draw_stored_run(app, state, monitor, store, long_run))
    panel.close()
    monitor.close()
    with contextlib.suppress(AttributeError):
        state.store.close()
    return {
        "runs_panel_refresh_s": round(panel_s, 3),
        "runs_listed": listed,
        "runs_panel_search_s": round(panel_search_s, 3),
        "monitor_stored_run_s": round(monitor_s, 3),
    }


def measure(location: str, args: argparse.Namespace) -> dict[str, Any]:
    """Fill the empty store at ``location`` and time everything on it."""
    from cnn_lab.engine.store.locations import open_store
    from cnn_lab.engine.store.run_query import RunQuery

    limit = args.runs + 1
    with open_store(location) as store:
        if store.list_runs(limit=1):
            raise SystemExit(
                "The benchmark fills the store with its own runs, ids included, so it needs an "
                "empty database; the one given already has runs."
            )
        started = time.perf_counter()
        long_run = fill(store, args.runs, args.points)
        fill_s = time.perf_counter() - started

    with open_store(location) as store, bare_rows(store, location) as bare:
        size_mb = database_mb(store, location)
        raw_s = best_of(args.repeat, lambda: bare(limit))
        list_s = best_of(args.repeat, lambda: store.list_runs(limit=limit))
        query = RunQuery(text=SEARCH, limit=limit)
        search_s = best_of(args.repeat, lambda: store.query_runs(query))
        found = len(store.query_runs(query))
        naive_s = best_of(args.repeat, lambda: naive_search(store, limit))
        assert len(naive_search(store, limit)) == found
        full_s = best_of(args.repeat, lambda: store.metrics(long_run, "train.loss"))
        down_s = best_of(args.repeat, lambda: store.curve(long_run, "train.loss"))
        shown = len(store.curve(long_run, "train.loss"))

    result: dict[str, Any] = {
        "database_mb": round(size_mb, 1),
        "fill_s": round(fill_s, 1),
        "list_runs_s": round(list_s, 3),
        "list_runs_bare_select_s": round(raw_s, 3),
        "list_runs_ratio": round(list_s / raw_s, 2),
        "search_found": found,
        "search_sql_s": round(search_s, 3),
        "search_naive_python_s": round(naive_s, 3),
        "search_speedup": round(naive_s / search_s, 1),
        "curve_downsampled_s": round(down_s, 3),
        "curve_points_drawn": shown,
        "curve_all_points_s": round(full_s, 3),
        "curve_speedup": round(full_s / down_s, 1),
    }
    result |= time_writes(location, args.write_points, args.keys, args.repeat)
    if not args.no_gui:
        result |= time_gui(location, long_run, args.repeat)
    return result


# --------------------------------------------------------------------- the two backends


@contextlib.contextmanager
def locations(args: argparse.Namespace, tmp: Path) -> Iterator[dict[str, str]]:
    """Each chosen backend's store location: a new SQLite file, and ``--pg`` or a database
    on a throwaway cluster (with its artifact root in ``tmp``, not the user's data folder)."""
    chosen: dict[str, str] = {}
    if "sqlite" in args.backends:
        chosen["sqlite"] = str(tmp / "runs.sqlite")
    if "postgres" not in args.backends:
        yield chosen
        return
    artifacts = "artifacts=" + quote(str(tmp / "pg-artifacts"), safe="/")
    if args.pg:
        chosen["postgres"] = args.pg + ("&" if "?" in args.pg else "?") + artifacts
        yield chosen
        return
    from tests.store.pg_cluster import Cluster

    cluster = Cluster.start()
    try:
        chosen["postgres"] = cluster.new_database() + "&" + artifacts
        yield chosen
    finally:
        cluster.stop()


RATIOS = (
    "list_runs_s",
    "search_sql_s",
    "curve_downsampled_s",
    "curve_all_points_s",
    "runs_panel_refresh_s",
    "runs_panel_search_s",
    "monitor_stored_run_s",
)


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """PostgreSQL's time over SQLite's for each read, and whether issue 21's goals held."""
    out: dict[str, Any] = {}
    sqlite, postgres = results.get("sqlite"), results.get("postgres")
    goals: dict[str, Any] = {}
    if sqlite and postgres:
        out["postgres_over_sqlite"] = {
            key: round(postgres[key] / sqlite[key], 2)
            for key in RATIOS
            if key in sqlite and key in postgres and sqlite[key] > 0
        }
        for name, key in (("list_runs", "list_runs_s"), ("curve", "curve_downsampled_s")):
            ratio = postgres[key] / sqlite[key]
            goals[f"{name}_within_{READ_GOAL:g}x"] = {
                "ratio": round(ratio, 2),
                "held": ratio <= READ_GOAL,
            }
    out["write_points_per_s"] = {name: r["write_points_per_s"] for name, r in results.items()}
    if postgres:
        rate = postgres["write_points_per_s"]
        goals[f"postgres_writes_at_least_{WRITE_GOAL}_per_s"] = {
            "points_per_s": rate,
            "held": rate >= WRITE_GOAL,
        }
    out["goals"] = goals
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--write-points", type=int, default=200_000, help="points one writer writes, timed"
    )
    parser.add_argument("--keys", type=int, default=4, help="metric keys per step the writer gets")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument(
        "--pg",
        metavar="URL",
        help="an empty PostgreSQL database to fill and time (left filled), instead of a "
        "throwaway cluster started for the benchmark",
    )
    parser.add_argument("--no-gui", action="store_true", help="skip the Runs and Monitor panels")
    args = parser.parse_args()

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp, locations(args, Path(tmp)) as chosen:
        for name in BACKENDS:
            if name in chosen:
                results[name] = measure(chosen[name], args)

    print(
        json.dumps(
            {
                "benchmark": "store_scale",
                "runs": args.runs,
                "points": args.points,
                "search": SEARCH,
                **results,
                **compare(results),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
