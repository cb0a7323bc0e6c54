"""``cnn-lab optimize`` against two ways of spending the same wall time, on built-in samples.

For each sample (at its native size) and each budget (minutes), three arms train small_cnn on
the same folder of PNG files (the sample exported once) with the same train/validation split
(cnn-lab's stratified split of that folder), each for the same wall time:

* (a) optimize: ``cnn_lab.engine.optimize.optimize`` with the whole budget (speed, rate,
  search, final run).
* (b) defaults: cnn-lab's default recipe (``TrainSpec()``: AdamW, one-cycle, lr 0.01, batch
  64), its epochs chosen from the epoch probe to fill the budget, stopped at the budget.
* (c) conventional: torchvision ``ImageFolder`` with PIL transforms in a ``DataLoader`` (one
  worker per core), fp32 SGD (momentum 0.9, weight decay 5e-4) with ``StepLR`` (x0.1 at a
  third and two thirds of its epochs); its rate the winner of a small grid (0.01, 0.05, 0.1),
  each tried for a twelfth of the budget (the grid's time is part of the arm's budget).

Each arm's validation accuracy is recorded with the wall time since the arm began, so besides
the best accuracy each reached the benchmark prints how long each needed to reach the best
accuracy (b) and (c) reached ("reference"), and ``ratio`` = that time / optimize's (> 1:
optimize got there sooner; None where an arm never got there). Prints one JSON object.

    python benchmarks/optimize.py [--budgets 3 10] [--samples shapes digits] [--device cpu]
    python benchmarks/optimize.py --budgets 1 --samples shapes --limit 600   # a short check

A budget too small for one epoch of a sample is refused by optimize (a 1-minute budget on
the whole shapes sample on a 2-core CPU is), hence ``--limit`` for a short run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from cnn_lab.engine.specs import RunSpec

GRID = (0.01, 0.05, 0.1)
GRID_SHARE = 0.25
PRESET = "small_cnn"


def export_sample(name: str, out: Path, limit: int | None = None) -> int:
    """The sample (``limit`` images of it, stratified) as a class-folder tree of PNGs; its
    native image side."""
    from cnn_lab.engine.data.export import export_folder
    from cnn_lab.engine.data.prepare import prepare_dataset
    from cnn_lab.engine.specs import DatasetSpec

    prepared = prepare_dataset(DatasetSpec(source=f"sample:{name}", limit=limit))
    export_folder(prepared, out)
    return int(prepared.images.shape[1])


def spec_for(folder: Path, size: int, device: str, **train: Any) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": str(folder), "image_size": size},
            "architecture": {"preset": PRESET},
            "train": {"device": device, **train},
        }
    )


def curve_of(db: Path, run_ids: list[int] | tuple[int, ...], began: float) -> list[list[float]]:
    """[seconds since ``began``, val accuracy] of every epoch of the runs, in time order."""
    from cnn_lab.engine.store import RunStore

    points = []
    with RunStore.open(db) as store:
        for run_id in run_ids:
            points += [[p.time - began, p.value] for p in store.metrics(run_id, "val.accuracy")]
    return sorted(points)


def arm_optimize(folder: Path, size: int, budget_s: float, device: str, db: Path) -> dict:
    from cnn_lab.engine.optimize import optimize
    from cnn_lab.engine.store import RunStore

    began = time.time()
    result = optimize(spec_for(folder, size, device), budget_s, db_path=db)
    final: dict[str, Any] = {}
    if result.final_run_id is not None:  # how the final run ended: its clock, not a stop
        with RunStore.open(db) as store:
            run = store.get_run(result.final_run_id)
        final = {"status": run.status, "reason": run.reason, "epochs": run.summary.get("epochs")}
    return {
        "val_accuracy": result.best_val_accuracy,
        "wall_s": time.time() - began,
        "budget_held": result.budget_held,
        "phases": [
            [p.phase, round(p.allotted_s, 1), round(p.spent_s, 1), p.outcome] for p in result.phases
        ],
        "final_run": final,
        "runs": runs_of(db, result.run_ids),
        "curve": curve_of(db, result.run_ids, began),
        "decisions": [f"[{d.phase}] {d.choice}" for d in result.decisions],
    }


def runs_of(db: Path, run_ids: tuple[int, ...]) -> list[dict[str, Any]]:
    """Each run optimize trained: its rate, weight decay, epochs, status and best accuracy."""
    from cnn_lab.engine.store import RunStore

    rows = []
    with RunStore.open(db) as store:
        for run_id in run_ids:
            run = store.get_run(run_id)
            train = RunSpec.from_json(run.spec_json).train
            rows.append(
                {
                    "run": run_id,
                    "lr": train.lr,
                    "weight_decay": train.weight_decay,
                    "epochs": run.summary.get("epochs"),
                    "status": run.status,
                    "best_val_accuracy": run.summary.get("best_val_accuracy"),
                }
            )
    return rows


def arm_defaults(folder: Path, size: int, budget_s: float, device: str, db: Path) -> dict:
    from cnn_lab.engine.jobs.job import run_job
    from cnn_lab.engine.tune.epoch_time import measure_epoch_time

    began = time.time()
    probe = measure_epoch_time(spec_for(folder, size, device))
    left = budget_s - (time.time() - began) - probe.setup_s
    epochs = max(1, int(left // probe.epoch_s))
    deadline = began + budget_s
    record = run_job(
        spec_for(folder, size, device, epochs=epochs),
        db,
        should_stop=lambda: time.time() >= deadline,
        sample_system=False,
    )
    assert record is not None
    return {
        "val_accuracy": record.summary.get("best_val_accuracy"),
        "wall_s": time.time() - began,
        "epochs": epochs,
        "curve": curve_of(db, [record.id], began),
    }


def arm_conventional(folder: Path, size: int, budget_s: float, device: str, _db: Path) -> dict:
    """Grid of rates on slices of the budget, then the winner for the rest (see docstring);
    it trains outside cnn-lab, so it stores nothing in ``_db``."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    from cnn_lab.engine.data.prepare import prepare_dataset
    from cnn_lab.engine.models import InputShape, build_model
    from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec

    began = time.perf_counter()
    spec = DatasetSpec(source=str(folder), image_size=size)
    prepared = prepare_dataset(spec)  # cnn-lab's split, so every arm validates on the same files
    split = prepared.split(spec)
    normalize = transforms.Normalize((0.5,) * 3, (0.25,) * 3)
    train_tf = transforms.Compose([transforms.RandomCrop(size, padding=4),
                                   transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                   normalize])  # fmt: skip
    val_tf = transforms.Compose([transforms.ToTensor(), normalize])
    train_all = datasets.ImageFolder(str(folder), transform=train_tf)
    val_all = datasets.ImageFolder(str(folder), transform=val_tf)
    where = {os.path.relpath(p, folder): i for i, (p, _) in enumerate(train_all.samples)}
    train_idx = [where[prepared.shown[i]] for i in split.train]
    val_idx = [where[prepared.shown[i]] for i in split.val]
    workers = os.cpu_count() or 1
    train_loader = DataLoader(Subset(train_all, train_idx), batch_size=64, shuffle=True,
                              num_workers=workers, persistent_workers=True)  # fmt: skip
    val_loader = DataLoader(Subset(val_all, val_idx), batch_size=256, num_workers=workers,
                            persistent_workers=True)  # fmt: skip
    shape = InputShape(3, size, size, len(train_all.classes))
    dev = torch.device(device if device != "auto" else "cpu")

    def train(
        lr: float, seconds: float, epochs: int | None, curve: list | None
    ) -> tuple[float, float]:
        """Train a fresh model at ``lr`` until ``seconds`` pass; best accuracy, epoch time."""
        torch.manual_seed(0)
        model = build_model(ArchitectureSpec(preset=PRESET), shape).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        step = max(1, (epochs or 3) // 3)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=step, gamma=0.1)
        start, best, times = time.perf_counter(), 0.0, []
        while time.perf_counter() - start < seconds and (epochs is None or len(times) < epochs):
            t0 = time.perf_counter()
            model.train()
            for x, y in train_loader:
                loss = F.cross_entropy(model(x.to(dev)), y.to(dev))
                opt.zero_grad()
                loss.backward()
                opt.step()
                if time.perf_counter() - start >= seconds:
                    break
            sched.step()
            model.eval()
            correct = 0
            with torch.no_grad():
                for x, y in val_loader:
                    correct += int((model(x.to(dev)).argmax(1) == y.to(dev)).sum())
            best = max(best, correct / len(val_idx))
            times.append(time.perf_counter() - t0)
            if curve is not None:
                curve.append([time.perf_counter() - began, correct / len(val_idx)])
        return best, (sum(times) / len(times)) if times else seconds

    slice_s = budget_s * GRID_SHARE / len(GRID)
    grid = {lr: train(lr, slice_s, None, None) for lr in GRID}
    lr = max(grid, key=lambda r: grid[r][0])
    left = budget_s - (time.perf_counter() - began)
    epochs = max(1, int(left // grid[lr][1]))
    curve: list[list[float]] = []
    best, _ = train(lr, left, epochs, curve)
    return {
        "val_accuracy": best,
        "wall_s": time.perf_counter() - began,
        "lr": lr,
        "grid": {str(k): round(v[0], 4) for k, v in grid.items()},
        "epochs": epochs,
        "curve": curve,
    }


ARMS = {"optimize": arm_optimize, "defaults": arm_defaults, "conventional": arm_conventional}


def time_to(curve: list[list[float]], accuracy: float | None) -> float | None:
    if accuracy is None:
        return None
    return next((round(t, 1) for t, value in curve if value >= accuracy - 1e-9), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budgets", type=float, nargs="+", default=[3.0, 10.0], help="minutes")
    parser.add_argument("--samples", nargs="+", default=["shapes", "digits"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--limit", type=int, default=None, help="images per sample (default: all); for short runs"
    )
    parser.add_argument(
        "--arms",
        nargs="+",
        default=list(ARMS),
        choices=list(ARMS),
        help="the arms to run (default: all three; the comparison needs all three)",
    )
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CNN_LAB_CACHE"] = str(Path(tmp) / "cache")
        for sample in args.samples:
            folder = Path(tmp) / sample
            size = export_sample(sample, folder, args.limit)
            for minutes in args.budgets:
                budget = minutes * 60.0
                db = Path(tmp) / f"{sample}-{minutes}.sqlite"
                arms = {
                    name: ARMS[name](folder, size, budget, args.device, db) for name in args.arms
                }
                reference = (
                    max(
                        (arms[a]["val_accuracy"] or 0.0)
                        for a in ("defaults", "conventional")
                        if a in arms
                    )
                    if set(arms) - {"optimize"}
                    else None
                )
                if "optimize" not in arms:
                    arms["optimize"] = {"val_accuracy": None, "curve": []}
                reach = {name: time_to(arm["curve"], reference) for name, arm in arms.items()}
                mine = reach["optimize"]
                results.append(
                    {
                        "sample": sample,
                        "size": size,
                        "budget_min": minutes,
                        "val_accuracy": {n: a["val_accuracy"] for n, a in arms.items()},
                        "reference_accuracy": reference,
                        "time_to_reference_s": reach,
                        "ratio": {
                            n: (None if t is None or not mine else round(t / mine, 2))
                            for n, t in reach.items()
                        },
                        "optimize_beats_both": None
                        if reference is None or len(arms) < len(ARMS)
                        else (arms["optimize"]["val_accuracy"] or 0.0) > reference,
                        "arms": {
                            n: {k: v for k, v in a.items() if k != "curve"} for n, a in arms.items()
                        },
                    }
                )
    print(json.dumps({"device": args.device, "limit": args.limit, "results": results}))


if __name__ == "__main__":
    main()
