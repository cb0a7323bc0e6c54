"""Store scale: listing 10,000 runs and drawing a run of 1,000,000 metric points.

Fills a fresh database with ``--runs`` runs (each with a realistic spec and summary, the
size cnn-lab writes) and one run whose ``train.loss`` has ``--points`` points, then times:

- ``list_runs``: the engine's query and record parsing for every run, against the floor of
  a bare ``SELECT`` of the same rows (the ratio is what parsing and records cost);
- the Runs panel's ``refresh`` with that many runs (Qt offscreen, the table filled and
  laid out), which is what "opens in under a second" means for a person;
- a search over them (``tag:`` plus a hyperparameter range, sorted by a result), in SQL
  through ``query_runs``, against the naive baseline of listing every run and filtering the
  parsed specs in Python, and the panel showing that search;
- the long run's curve: ``downsampled`` (two points per bucket, 2,000 buckets) against
  loading every point with ``RunStore.metrics`` (the baseline), and the Monitor panel drawing
  the stored run.

Prints one JSON object. The best of ``--repeat`` timings counts, so one hiccup does not.

    python benchmarks/store_scale.py [--runs 10000] [--points 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def best_of(repeat: int, action: Callable[[], Any]) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def fill(db: Path, runs: int, points: int) -> int:
    """Write ``runs`` runs and one run of ``points`` points; the long run's id."""
    from cnn_lab.engine.specs import RunSpec
    from cnn_lab.engine.store import RunStore

    spec = RunSpec.from_dict({"dataset": {"source": "sample:shapes"}})
    spec_dict, spec_hash = json.loads(spec.to_json()), spec.spec_hash()

    def spec_json(lr: float) -> str:
        spec_dict["train"]["lr"] = lr
        return json.dumps(spec_dict)

    rng = random.Random(0)
    now = time.time()
    with RunStore.open(db) as store:
        conn = store.sqlite_db.conn
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO runs (name, status, spec_json, spec_hash, dataset, model, device, "
            "created_at, started_at, ended_at, summary_json) "
            "VALUES (?, 'completed', ?, ?, 'sample:shapes', ?, 'cpu', ?, ?, ?, ?)",
            (
                (
                    f"run {i}",
                    spec_json(rng.choice([0.3, 0.1, 0.03, 0.01, 0.003])),
                    spec_hash,
                    rng.choice(["small_cnn", "resnet9", "resnet18"]),
                    now - i,
                    now - i,
                    now - i + 60,
                    json.dumps(
                        {
                            "epochs": 10,
                            "best_val_accuracy": rng.random(),
                            "train_images_per_s": rng.uniform(500, 5000),
                            "device": "cpu",
                            "classes": [f"class {c}" for c in range(10)],
                            "bottleneck": {"verdict": "compute-bound", "evidence": {"x": 1}},
                        }
                    ),
                )
                for i in range(runs)
            ),
        )
        # A tenth of the runs carry a tag, as a person marks the ones worth keeping.
        conn.executemany(
            "INSERT INTO run_tags (run_id, tag) SELECT id, ? FROM runs WHERE id % 10 = ?",
            [("keep", 0), ("baseline", 1)],
        )
        conn.execute("COMMIT")
        long_run = store.create_run(spec_json=spec_json(0.1), spec_hash=spec_hash, name="long")
        store.mark_running(long_run, pid=os.getpid(), device="cpu")
        from cnn_lab.engine.store import MetricPoint

        batch = 100_000
        for start in range(0, points, batch):
            store.add_metrics(
                MetricPoint(long_run, s, s // 10_000, "train.loss", 2.0 / (1 + s / 1e4), now)
                for s in range(start, min(points, start + batch))
            )
        store.finish_run(long_run, "completed")
    return long_run


SEARCH = "tag:keep lr<0.05 sort:-best_val_accuracy"
"""The Runs browser search timed: a tag, a hyperparameter range, sorted by a result."""


def naive_search(store: Any, limit: int) -> list[Any]:
    """The baseline: list every run, then filter and sort the parsed specs in Python."""
    records = store.list_runs(limit=limit)
    chosen = [
        r
        for r in records
        if "keep" in r.tags and json.loads(r.spec_json)["train"]["lr"] < 0.05 and not r.archived
    ]
    return sorted(chosen, key=lambda r: -(r.summary.get("best_val_accuracy") or -1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtWidgets import QApplication

    from cnn_lab.app.panels.monitor_panel import MonitorPanel
    from cnn_lab.app.panels.runs_panel import RunsPanel
    from cnn_lab.app.state import AppState
    from cnn_lab.engine.store import RunStore
    from cnn_lab.engine.store.run_query import RunQuery

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.sqlite"
        started = time.perf_counter()
        long_run = fill(db, args.runs, args.points)
        fill_s = time.perf_counter() - started
        size_mb = db.stat().st_size / 2**20

        with RunStore.open(db) as store:
            raw_s = best_of(
                args.repeat,
                lambda: store.sqlite_db.execute(
                    "SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", [args.runs + 1]
                ).fetchall(),
            )
            list_s = best_of(args.repeat, lambda: store.list_runs(limit=args.runs + 1))
            query = RunQuery(text=SEARCH, limit=args.runs + 1)
            search_s = best_of(args.repeat, lambda: store.query_runs(query))
            found = len(store.query_runs(query))
            naive_s = best_of(args.repeat, lambda: naive_search(store, args.runs + 1))
            assert len(naive_search(store, args.runs + 1)) == found
            full_s = best_of(args.repeat, lambda: store.metrics(long_run, "train.loss"))
            down_s = best_of(args.repeat, lambda: store.curve(long_run, "train.loss"))
            shown = len(store.curve(long_run, "train.loss"))
            record = store.get_run(long_run)

        state = AppState(db)
        panel = RunsPanel(state)
        panel.resize(1280, 800)
        panel.show()
        app.processEvents()

        def refresh() -> None:
            panel.refresh()
            app.processEvents()

        panel_s = best_of(args.repeat, refresh)
        listed = panel.model.rowCount()

        def search() -> None:
            panel.set_filter(SEARCH)
            app.processEvents()
            panel.set_filter("")

        panel_search_s = best_of(args.repeat, search)
        monitor = MonitorPanel(state)
        monitor.resize(1280, 800)
        monitor.show()

        def draw() -> None:
            with RunStore.open(db) as store:
                monitor.show_stored_run(record, store)
            monitor.repaint()
            app.processEvents()

        monitor_s = best_of(args.repeat, draw)
        panel.close()
        monitor.close()

    print(
        json.dumps(
            {
                "benchmark": "store_scale",
                "runs": args.runs,
                "points": args.points,
                "database_mb": round(size_mb, 1),
                "fill_s": round(fill_s, 1),
                "list_runs_s": round(list_s, 3),
                "list_runs_bare_select_s": round(raw_s, 3),
                "list_runs_ratio": round(list_s / raw_s, 2),
                "runs_panel_refresh_s": round(panel_s, 3),
                "runs_listed": listed,
                "search": SEARCH,
                "search_found": found,
                "search_sql_s": round(search_s, 3),
                "search_naive_python_s": round(naive_s, 3),
                "search_speedup": round(naive_s / search_s, 1),
                "runs_panel_search_s": round(panel_search_s, 3),
                "curve_downsampled_s": round(down_s, 3),
                "curve_points_drawn": shown,
                "curve_all_points_s": round(full_s, 3),
                "curve_speedup": round(full_s / down_s, 1),
                "monitor_stored_run_s": round(monitor_s, 3),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
