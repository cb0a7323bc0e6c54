"""Search efficiency: TPE with pruning against the exhaustive grid, on a task sized for a CPU.

Both searches train small_cnn on the same stratified subset of the shapes sample (``--limit``
images, 32 px) through cnn-lab's sweep engine, so every trial is a real recorded run, and both
read the same number: the best validation accuracy any trial reached. The grid is the baseline:
every combination of the learning rate, the weight decay and the width multiplier below, each
trained for the full ``--epochs``. TPE searches the same box as continuous ranges (log scale for
the rate and the decay), with the chosen pruner stopping trials that trail after a few epochs,
and a trial budget of ``--tpe-trials``.

The claim (issue 7): TPE with pruning gets within 0.5 percentage points of the grid's best
while spending at most a quarter of the grid's training epochs. Prints one JSON object with
both searches' best accuracy, their epochs, the epoch ratio, the gap and whether the claim held.

    python benchmarks/search_efficiency.py [--limit N] [--epochs 6] [--batch 32] [--tpe-trials 16]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

LRS = (0.001, 0.003, 0.01, 0.03, 0.1)
DECAYS = (0.0, 5e-4, 5e-3)
WIDTHS = (0.5, 1.0)


def base(limit: int, epochs: int, batch: int) -> dict[str, Any]:
    return {
        "dataset": {"source": "sample:shapes", "limit": limit},
        "architecture": {"preset": "small_cnn"},
        "train": {
            "epochs": epochs,
            "batch_size": batch,
            "optimizer": "adamw",
            "schedule": "onecycle",
            "device": "cpu",
            "seed": 0,
        },
    }


def search(name: str, args: argparse.Namespace, **kind: Any) -> Any:
    from cnn_lab.engine.search.spec import SearchSpec

    return SearchSpec.from_dict(
        {"name": name, "base": base(args.limit, args.epochs, args.batch), **kind}
    )


def run(spec: Any, folder: Path) -> tuple[Any, float]:
    from cnn_lab.engine.search.study import run_sweep

    db = folder / f"{spec.name}.sqlite"
    started = time.perf_counter()
    result = run_sweep(spec, db, sample_system=False)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tpe-trials", type=int, default=16)
    parser.add_argument("--pruner", default="halving", choices=("median", "halving", "hyperband"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ.setdefault("CNN_LAB_CACHE", str(folder / "cache"))
        grid = search(
            "grid",
            args,
            strategy="grid",
            params=[
                {"path": "train.lr", "values": list(LRS)},
                {"path": "train.weight_decay", "values": list(DECAYS)},
                {"path": "architecture.width", "values": list(WIDTHS)},
            ],
        )
        tpe = search(
            "tpe",
            args,
            strategy="tpe",
            pruner=args.pruner,
            prune_startup_trials=3,
            prune_warmup_epochs=1,
            trials=args.tpe_trials,
            params=[
                {"path": "train.lr", "range": {"low": LRS[0], "high": LRS[-1], "log": True}},
                {
                    "path": "train.weight_decay",
                    "range": {"low": 1e-5, "high": DECAYS[-1], "log": True},
                },
                {"path": "architecture.width", "range": {"low": WIDTHS[0], "high": WIDTHS[-1]}},
            ],
        )
        grid_result, grid_s = run(grid, folder)
        tpe_result, tpe_s = run(tpe, folder)

    grid_best, tpe_best = grid_result.best_value or 0.0, tpe_result.best_value or 0.0
    gap_pp = 100.0 * (grid_best - tpe_best)
    ratio = tpe_result.epochs_spent / max(grid_result.epochs_spent, 1)
    print(
        json.dumps(
            {
                "benchmark": "search_efficiency",
                "task": f"small_cnn on {args.limit} shapes images, 32 px, batch {args.batch}, "
                f"up to {args.epochs} epochs, CPU",
                "grid": {
                    "trials": grid_result.trials_done,
                    "epochs": grid_result.epochs_spent,
                    "best_val_accuracy": round(grid_best, 4),
                    "best_params": grid_result.best_params,
                    "seconds": round(grid_s, 1),
                },
                "tpe_pruned": {
                    "pruner": args.pruner,
                    "trials": tpe_result.trials_done,
                    "pruned": tpe_result.trials_pruned,
                    "epochs": tpe_result.epochs_spent,
                    "best_val_accuracy": round(tpe_best, 4),
                    "best_params": tpe_result.best_params,
                    "seconds": round(tpe_s, 1),
                },
                "gap_percentage_points": round(gap_pp, 2),
                "epoch_ratio": round(ratio, 3),
                "claim_holds": gap_pp <= 0.5 and ratio <= 0.25,
            }
        )
    )


if __name__ == "__main__":
    main()
