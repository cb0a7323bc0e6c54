"""Make every screenshot in the README with ``cnn-lab --screenshot``, on a demo database.

    .venv/bin/python docs/make_screenshots.py [--out docs/screenshots] [--keep DIR]

It trains a few short runs and a small sweep with the CLI (about 4 minutes on a 2-core CPU),
evaluates one run, then renders each panel as a person would see it. Settings, the dataset
cache and the database all live in a temporary folder: your own are never read or changed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "cnn_lab.app.main"]


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*CLI, *args], env=env, check=True, capture_output=True, text=True)
    return done.stdout


def shot(env: dict[str, str], db: Path, out: Path, name: str, *args: str) -> None:
    cli(env, "--db", str(db), "--screenshot", str(out / f"{name}.png"), *args)
    print(f"{out / name}.png", flush=True)


def messy_folder(root: Path) -> Path:
    """A small class-folder dataset with the problems the import report finds."""
    rng = np.random.default_rng(0)
    folder = root / "messy-photos"
    for name, count in (("cats", 40), ("dogs", 36), ("birds", 3)):
        (folder / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{name}-{i}.jpg")
    shutil.copy(folder / "cats" / "cats-0.jpg", folder / "dogs" / "copy-of-a-cat.jpg")
    (folder / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (folder / "cats" / "notes.txt").write_text("not an image")
    return folder


def prediction_images(root: Path) -> Path:
    """A few images of the shapes sample, as files a person would drop on Predict."""
    from cnn_lab.engine.data.samples import load_sample

    images = load_sample("shapes", seed=7)
    folder = root / "new-images"
    folder.mkdir()
    for i in range(0, 60, 5):
        Image.fromarray(images.images[i]).save(folder / f"photo-{i:02d}.png")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--keep", type=Path, help="keep the demo database in this folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cnn-lab-shots-"))
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(work / "config"),
        "XDG_STATE_HOME": str(work / "state"),
        "CNN_LAB_CACHE": str(work / "cache"),
    }
    env.pop("CNN_LAB_DB", None)
    db = work / "runs.sqlite"
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    shot(env, db, out, "first-run")  # the empty database: the welcome card
    shot(env, db, out, "data-import", "--panel", "data", "--drop", str(messy_folder(work)))
    common = ["--db", str(db), "train", "--epochs", "6", "--device", "cpu", "--json"]
    ids = []
    for lr, name in ((0.01, "baseline"), (0.003, "lower lr"), (0.03, "higher lr")):
        result = json.loads(cli(env, *common, "--lr", str(lr), "--name", name))
        ids.append(result["run_id"])
    search = work / "search.json"
    search.write_text(json.dumps({
        "name": "lr-and-width", "strategy": "random", "trials": 6,
        "base": {"dataset": {"source": "sample:shapes", "limit": 3000},
                 "train": {"epochs": 5, "device": "cpu"}},
        "params": [{"path": "train.lr", "range": {"low": 2e-3, "high": 2e-2, "log": True}},
                   {"path": "architecture.width", "choices": [0.5, 1.0, 2.0]}],
    }))  # fmt: skip
    cli(env, "--db", str(db), "sweep", str(search), "--json")
    cli(env, "--db", str(db), "evaluate", str(ids[0]), "--json")

    first = str(ids[0])
    shot(env, db, out, "data", "--panel", "data")
    shot(env, db, out, "architecture", "--panel", "architecture")
    shot(env, db, out, "hyperparameters", "--panel", "hyperparameters")
    shot(env, db, out, "tune", "--panel", "tune")
    shot(env, db, out, "sweep", "--panel", "sweep")
    shot(env, db, out, "monitor", "--panel", "monitor", "--runs", first)
    shot(env, db, out, "runs", "--panel", "runs", "--runs", first)
    shot(env, db, out, "compare", "--panel", "compare", "--runs", ",".join(map(str, ids)))
    shot(env, db, out, "evaluate", "--panel", "evaluate", "--runs", first)
    shot(env, db, out, "predict", "--panel", "predict", "--runs", first,
         "--drop", str(prediction_images(work)))  # fmt: skip
    shot(env, db, out, "monitor-dark", "--panel", "monitor", "--runs", first, "--theme", "dark")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(db, args.keep / "runs.sqlite")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
