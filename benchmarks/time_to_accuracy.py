"""Wall time to a target validation accuracy: cnn-lab's fastest CPU recipe vs. a conventional one.

Both arms train the same network (a cnn-lab preset built by ``build_model``; small_cnn by
default) on the same folder of JPEG files with the same train/validation file lists (cnn-lab's
stratified split, handed to the conventional arm as lists of paths), on the same cores and
threads, and evaluate on the whole validation list after every epoch. Each stops at the first
epoch whose validation accuracy reaches ``--target``; its time runs from the start of its data
set-up (listing or decoding the files) to that evaluation.

* conventional, written as a person writes it: torchvision ``ImageFolder`` with PIL transforms
  (RandomCrop with 4-pixel padding, RandomHorizontalFlip, ToTensor, Normalize) in a
  ``DataLoader`` with one worker per core (persistent; pinned memory on CUDA), fp32,
  ``SGD(momentum=0.9, weight_decay=5e-4)`` with ``StepLR`` (x0.1 every 10 epochs), batch 64.
  Its rate, 0.01, is the fastest to the target of 0.01/0.02/0.05/0.1 on this data (0.05 and 0.1
  stall for several epochs with this network), so it is not handicapped by a bad guess.
* cnn-lab: the same images through ``train_events``: the uint8 cache built first (counted, and
  printed apart), resident batches augmented on the device (flip and the same 4-pixel
  translation), a one-cycle SGD/Nesterov schedule over ``--epochs``, label smoothing 0.1, fused
  optimizer, channels-last, and bf16 autocast only if a short probe (counted too, printed apart)
  finds it faster than fp32 here. The batch stays 64: on a 2-core CPU 128 and 256 measured
  slower per image, and larger batches need more epochs.

The default resolution is the sample's own 32 px: ``--size 64`` trains on an upscaled copy, with
no more information in it at 4-5x the compute, and needs a longer cycle (``--epochs 12``).
Prints one JSON object; ``ratio`` = conventional time / cnn-lab time (> 1: cnn-lab is faster).

    python benchmarks/time_to_accuracy.py [--target 0.95] [--size 32] [--folder DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F

from cnn_lab.engine.specs import RunSpec

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
"""The conventional arm's Normalize (cnn-lab measures the training split's own statistics)."""


def split_lists(folder: Path, size: int, cache: Path) -> tuple[list[str], list[str]]:
    """cnn-lab's train and validation files of ``folder``, as paths relative to it.

    Prepared in a throwaway cache, so neither arm's timed run finds anything decoded.
    """
    from cnn_lab.engine.data.prepare import prepare_dataset
    from cnn_lab.engine.specs import DatasetSpec

    os.environ["CNN_LAB_CACHE"] = str(cache)
    spec = DatasetSpec(source=str(folder), image_size=size)
    prepared = prepare_dataset(spec)
    split = prepared.split(spec)
    shutil.rmtree(cache, ignore_errors=True)
    return [prepared.shown[i] for i in split.train], [prepared.shown[i] for i in split.val]


def conventional(
    folder: Path,
    train_files: list[str],
    val_files: list[str],
    args: argparse.Namespace,
    device: torch.device,
) -> dict:
    """ImageFolder + DataLoader workers + fp32 SGD/StepLR until ``args.target`` is reached."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    from cnn_lab.engine.models import InputShape, build_model
    from cnn_lab.engine.specs import ArchitectureSpec

    started = time.perf_counter()
    normalize = transforms.Normalize(MEAN, STD)
    train_tf = transforms.Compose(
        [
            transforms.RandomCrop(args.size, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalize,
        ]
    )
    val_tf = transforms.Compose([transforms.ToTensor(), normalize])
    train_all = datasets.ImageFolder(str(folder), transform=train_tf)
    val_all = datasets.ImageFolder(str(folder), transform=val_tf)
    where = {os.path.relpath(path, folder): i for i, (path, _) in enumerate(train_all.samples)}
    train_set = Subset(train_all, [where[f] for f in train_files])
    val_set = Subset(val_all, [where[f] for f in val_files])
    workers = os.cpu_count() or 1
    pin = device.type == "cuda"
    train_loader = DataLoader(
        train_set,
        batch_size=args.baseline_batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=True,
    )
    val_loader = DataLoader(
        val_set, batch_size=256, num_workers=workers, pin_memory=pin, persistent_workers=True
    )
    torch.manual_seed(args.seed)
    classes = len(train_all.classes)
    shape = InputShape(channels=3, height=args.size, width=args.size, classes=classes)
    model = build_model(ArchitectureSpec(preset=args.preset), shape).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.baseline_lr, momentum=0.9, weight_decay=5e-4
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.baseline_step, gamma=0.1)

    curve: list[float] = []
    stamps = [time.perf_counter()]
    elapsed = None
    for _ in range(args.baseline_epochs):
        model.train()
        for x, y in train_loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val_loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                correct += int((model(x).argmax(1) == y).sum())
        curve.append(correct / len(val_set))
        stamps.append(time.perf_counter())
        if curve[-1] >= args.target:
            elapsed = time.perf_counter() - started
            break
    total = time.perf_counter() - started
    return {
        "time_s": elapsed,
        "run_s": total,
        "epochs": len(curve),
        "val_accuracy": curve[-1],
        "curve": curve,
        "setup_s": stamps[0] - started,
        "epoch_s": [b - a for a, b in pairwise(stamps)],
        "workers": workers,
    }


def probe_precision(spec: RunSpec, device: torch.device, shape: tuple[int, int, int]) -> str:
    """bf16 if a few training steps of the run's model are clearly faster in it than in fp32."""
    from cnn_lab.engine.models import InputShape, build_model
    from cnn_lab.engine.train.options import check_options

    try:
        check_options(spec.train.model_copy(update={"precision": "bf16"}), device)
    except Exception:
        return "fp32"  # refused on this device: nothing to measure
    channels, size, classes = shape
    model = build_model(spec.architecture, InputShape(channels, size, size, classes))
    model = model.to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(spec.train.batch_size, channels, size, size, device=device)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (spec.train.batch_size,), device=device)

    def step(dtype: torch.dtype) -> float:
        started = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # synchronise
        return time.perf_counter() - started

    # Alternating steps, so load from elsewhere hits both; the first rounds pick kernels.
    times = [(step(torch.float32), step(torch.bfloat16)) for _ in range(8)][2:]
    fp32, bf16 = min(t[0] for t in times), min(t[1] for t in times)
    return "bf16" if bf16 < 0.9 * fp32 else "fp32"


def cnn_lab(folder: Path, args: argparse.Namespace, device: torch.device, cache: Path) -> dict:
    """Cache build, precision probe and ``train_events`` until ``args.target`` is reached."""
    from cnn_lab.engine.data.prepare import prepare_dataset
    from cnn_lab.engine.train.events import EpochEnd, RunFinished, RunStarted
    from cnn_lab.engine.train.loop import train_events

    os.environ["CNN_LAB_CACHE"] = str(cache)
    # A translation of at most 4 pixels, as the conventional RandomCrop(padding=4).
    shift = min(1.0, 4 / (0.125 * args.size))  # augment.MAX_TRANSLATE_FRACTION is 1/8
    spec = RunSpec.from_dict(
        {
            "dataset": {
                "source": str(folder),
                "image_size": args.size,
                "augment": [
                    {"name": "hflip", "strength": 1.0},
                    {"name": "translate", "strength": shift},
                ],
            },
            "architecture": {"preset": args.preset},
            "train": {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "optimizer": "sgd",
                "lr": args.lr,
                "momentum": 0.9,
                "nesterov": True,
                "weight_decay": 5e-4,
                "schedule": "onecycle",
                "label_smoothing": 0.1,
                "channels_last": True,
                "fused_optimizer": "auto",
                "precision": "fp32",
                "device": str(device),
                "seed": args.seed,
            },
        }
    )
    started = time.perf_counter()
    prepared = prepare_dataset(spec.dataset)  # the cache: decoded once, then memory-mapped
    cache_s = time.perf_counter() - started
    precision = args.precision
    if precision == "auto":
        shape = (prepared.images.shape[-1], args.size, len(prepared.classes))
        precision = probe_precision(spec, device, shape)
    probe_s = time.perf_counter() - started - cache_s
    spec = spec.model_copy(update={"train": spec.train.model_copy(update={"precision": precision})})

    curve: list[float] = []
    stamps = [time.perf_counter()]
    elapsed = None
    events = train_events(spec)
    try:
        for event in events:
            if isinstance(event, RunStarted):  # data (cache reused), loaders and model ready
                stamps.append(time.perf_counter())
            elif isinstance(event, EpochEnd):
                curve.append(event.val_accuracy)
                stamps.append(time.perf_counter())
                if event.val_accuracy >= args.target:
                    elapsed = time.perf_counter() - started
                    break
            elif isinstance(event, RunFinished) and event.status != "completed":
                raise RuntimeError(f"cnn-lab's run ended {event.status}: {event.reason}")
    finally:
        events.close()
    return {
        "time_s": elapsed,
        "run_s": time.perf_counter() - started,
        "cache_build_s": cache_s,
        "precision_probe_s": probe_s,
        "precision": precision,
        "setup_s": stamps[1] - stamps[0],
        "epoch_s": [b - a for a, b in pairwise(stamps[1:])],
        "epochs": len(curve),
        "val_accuracy": curve[-1] if curve else None,
        "curve": curve,
    }


def rounded(values: list[float], digits: int = 3) -> list[float]:
    return [round(v, digits) for v in values]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--target", type=float, default=0.95, help="validation accuracy")
    parser.add_argument("--folder", type=Path, help="a class-folder tree of JPEGs (default: made)")
    parser.add_argument("--size", type=int, default=32, help="image side both arms train at")
    parser.add_argument("--preset", default="small_cnn", help="the network of both arms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per arm, interleaved; best")
    ours = parser.add_argument_group("cnn-lab")
    ours.add_argument("--epochs", type=int, default=6, help="one-cycle length (stops at target)")
    ours.add_argument("--batch-size", type=int, default=64)
    ours.add_argument("--lr", type=float, default=0.05)
    ours.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    base = parser.add_argument_group("conventional")
    base.add_argument("--baseline-epochs", type=int, default=30, help="at most")
    base.add_argument("--baseline-batch-size", type=int, default=64)
    base.add_argument("--baseline-lr", type=float, default=0.01)
    base.add_argument("--baseline-step", type=int, default=10, help="StepLR step_size (epochs)")
    args = parser.parse_args()

    from cnn_lab.engine.train.devices import resolve_device

    device = resolve_device(args.device)
    torch.set_num_threads(os.cpu_count() or 1)
    runs: dict[str, list[dict]] = {"cnn_lab": [], "conventional": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "shapes-jpeg"
        if args.folder is None:
            from data_pipeline import make_folder  # the helper data_pipeline.py uses

            os.environ["CNN_LAB_CACHE"] = str(Path(tmp) / "export-cache")
            make_folder(folder, args.size)
        train_files, val_files = split_lists(folder, args.size, Path(tmp) / "split-cache")
        cache = Path(tmp) / "cache"
        arms: list[tuple[str, Callable[[], dict]]] = [
            ("cnn_lab", lambda: cnn_lab(folder, args, device, cache)),
            ("conventional", lambda: conventional(folder, train_files, val_files, args, device)),
        ]
        for _ in range(args.repeat):  # interleaved; each cnn-lab run builds its cache anew
            for name, arm in arms:
                shutil.rmtree(cache, ignore_errors=True)
                runs[name].append(arm())

    def best(name: str) -> dict:
        reached = [r for r in runs[name] if r["time_s"] is not None]
        return min(reached, key=lambda r: r["time_s"]) if reached else runs[name][0]

    ours_best, base_best = best("cnn_lab"), best("conventional")
    ratio = None
    if ours_best["time_s"] and base_best["time_s"]:
        ratio = round(base_best["time_s"] / ours_best["time_s"], 2)
    print(
        json.dumps(
            {
                "benchmark": "time_to_accuracy",
                "device": str(device),
                "threads": torch.get_num_threads(),
                "target_val_accuracy": args.target,
                "preset": args.preset,
                "image_size": args.size,
                "train_images": len(train_files),
                "val_images": len(val_files),
                "cnn_lab_time_s": _round(ours_best["time_s"]),
                "cnn_lab_cache_build_s": round(ours_best["cache_build_s"], 2),
                "cnn_lab_precision_probe_s": round(ours_best["precision_probe_s"], 2),
                "cnn_lab_precision": ours_best["precision"],
                "cnn_lab_train_setup_s": round(ours_best["setup_s"], 2),
                "cnn_lab_epoch_s": rounded(ours_best["epoch_s"], 2),
                "cnn_lab_epochs": ours_best["epochs"],
                "cnn_lab_val_accuracy": round(ours_best["val_accuracy"], 4),
                "cnn_lab_curve": rounded(ours_best["curve"]),
                "cnn_lab_recipe": (
                    f"sgd nesterov lr {args.lr} one-cycle over {args.epochs} epochs, batch "
                    f"{args.batch_size}, label smoothing 0.1, fused, channels-last"
                ),
                "baseline_time_s": _round(base_best["time_s"]),
                "baseline_epochs": base_best["epochs"],
                "baseline_val_accuracy": round(base_best["val_accuracy"], 4),
                "baseline_setup_s": round(base_best["setup_s"], 2),
                "baseline_epoch_s": rounded(base_best["epoch_s"], 2),
                "baseline_curve": rounded(base_best["curve"]),
                "baseline_workers": base_best["workers"],
                "baseline_recipe": (
                    f"sgd momentum 0.9 wd 5e-4 lr {args.baseline_lr}, StepLR "
                    f"{args.baseline_step} epochs x0.1, batch {args.baseline_batch_size}, fp32"
                ),
                "ratio": ratio,
                "runs": args.repeat,
            }
        )
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


if __name__ == "__main__":
    main()
