"""Fine-tuning pretrained weights against training from scratch, on a small dataset.

Real ImageNet weights cannot be downloaded here, so this stands in for them with the same
mechanics: cnn-lab pretrains a network on one built-in sample (``--pretrain``, all of it) and
its saved weights file becomes the "pretrained" file. Then two runs train the same network on
a small subset of another sample (``--target``: ``--train-images`` training images, as many
again for validation, the same split in both arms):

* fine-tuned: ``architecture.pretrained`` is that file, and the fine-tuning recipe is on (its
  default whenever weights are pretrained): the head alone first, then every layer with lower
  rates for earlier layer groups;
* scratch: the same network, freshly initialised, with cnn-lab's default recipe.

Both train ``--epochs`` epochs with the same batch size and rate. It prints one JSON object:
each arm's best validation accuracy, and the epochs each needed to reach the scratch run's
best (``epochs_ratio`` = fine-tuned / scratch; the claim is <= 0.5).

    python benchmarks/transfer.py [--pretrain shapes] [--target textures] [--epochs 12]

With real ImageNet weights on real photographs, the gap is larger: torchvision's published
weights carry features learnt from 1.28 million images, against a few thousand here.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from cnn_lab.engine.jobs.job import run_job
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore, artifact_kinds
from cnn_lab.engine.store import status as st


def train(db: Path, spec: dict[str, Any]) -> tuple[int, float]:
    """Run ``spec`` to the end; its run id and wall time."""
    started = time.perf_counter()
    record = run_job(RunSpec.from_dict(spec), db, sample_system=False)
    seconds = time.perf_counter() - started
    if record is None or record.status != st.COMPLETED:
        raise SystemExit(f"the run did not complete: {record and record.reason}")
    return record.id, seconds


def accuracies(db: Path, run_id: int) -> list[float]:
    """Validation accuracy after each epoch, in order."""
    with RunStore.open(db) as store:
        return [point.value for point in store.metrics(run_id, "val.accuracy")]


def weights_file(db: Path, run_id: int) -> str:
    with RunStore.open(db) as store:
        saved = [a for a in store.artifacts(run_id) if a["kind"] == artifact_kinds.WEIGHTS]
    return str(saved[-1]["path"])


def epochs_to_reach(curve: list[float], target: float) -> int | None:
    """The first epoch (1-based) whose accuracy reaches ``target``; None if none does."""
    return next((epoch for epoch, acc in enumerate(curve, 1) if acc >= target - 1e-9), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain", default="shapes", help="sample to pretrain on (all of it)")
    parser.add_argument("--pretrain-epochs", type=int, default=6)
    parser.add_argument("--target", default="textures", help="sample to fine-tune on")
    parser.add_argument("--train-images", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--preset", default="small_cnn")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CNN_LAB_CACHE", str(Path(tmp) / "cache"))
        db = Path(tmp) / "runs.sqlite"
        architecture = {"preset": args.preset}
        common_train = {"batch_size": args.batch_size, "lr": args.lr, "device": "cpu"}
        pretrain_id, pretrain_s = train(
            db,
            {
                "name": f"pretrain on {args.pretrain}",
                "dataset": {"source": f"sample:{args.pretrain}", "image_size": args.size,
                            "channels": 3},
                "architecture": architecture,
                "train": {**common_train, "epochs": args.pretrain_epochs},
            },
        )  # fmt: skip
        pretrained = weights_file(db, pretrain_id)
        # The same images in both arms: the same source, size, limit and split seed.
        dataset = {
            "source": f"sample:{args.target}",
            "image_size": args.size,
            "channels": 3,
            "limit": 2 * args.train_images,
            "val_fraction": 0.5,
        }
        train_spec = {**common_train, "epochs": args.epochs}
        scratch_id, scratch_s = train(
            db,
            {"name": "scratch", "dataset": dataset, "architecture": architecture,
             "train": train_spec},
        )  # fmt: skip
        tuned_id, tuned_s = train(
            db,
            {"name": "fine-tuned", "dataset": dataset,
             "architecture": {**architecture, "pretrained": pretrained},
             "train": train_spec},
        )  # fmt: skip
        scratch, tuned = accuracies(db, scratch_id), accuracies(db, tuned_id)
        pretrain_curve = accuracies(db, pretrain_id)
        with RunStore.open(db) as store:
            recipe = store.get_run(tuned_id).summary.get("fine_tune")

    target = max(scratch)
    scratch_epochs = epochs_to_reach(scratch, target)
    tuned_epochs = epochs_to_reach(tuned, target)
    ratio = tuned_epochs / scratch_epochs if tuned_epochs and scratch_epochs else None
    result = {
        "pretrain": {
            "sample": f"sample:{args.pretrain}",
            "epochs": args.pretrain_epochs,
            "best_val_accuracy": round(max(pretrain_curve), 4),
            "seconds": round(pretrain_s, 1),
        },
        "target": f"sample:{args.target}",
        "train_images": args.train_images,
        "epochs": args.epochs,
        "preset": args.preset,
        "size": args.size,
        "scratch": {
            "best_val_accuracy": round(target, 4),
            "epochs_to_its_best": scratch_epochs,
            "curve": [round(a, 3) for a in scratch],
            "seconds": round(scratch_s, 1),
        },
        "fine_tuned": {
            "best_val_accuracy": round(max(tuned), 4),
            "epochs_to_scratch_best": tuned_epochs,
            "curve": [round(a, 3) for a in tuned],
            "seconds": round(tuned_s, 1),
            "recipe": recipe,
        },
        "epochs_ratio": ratio,
        "claim_holds": ratio is not None and ratio <= 0.5,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
