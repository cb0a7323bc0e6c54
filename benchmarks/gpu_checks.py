"""The GPU checks of the "hot path" issue, all in one call: does cnn-lab's trainer keep a GPU busy?

On a CPU a step takes tens of milliseconds and a host sync or a few Python lines are lost in
it; on a fast GPU a small network's step takes one or two, and every ``.item()``, every
pageable copy and every extra kernel launch shows. Each check runs in its own child process (so
CUDA state, cuDNN's autotuning and torch.compile's caches start clean, and one that fails or
runs out of time does not take the others with it), and the script prints one JSON object
with each check's numbers, ratios and whether its target is met.

1. ``engine_overhead``: benchmarks/engine_overhead.py itself, run with ``--device cuda`` as a
   subprocess and its JSON kept whole: ``train_events`` against a bare PyTorch loop over
   pre-normalised resident batches (small_cnn, batch 64, fp32, channels-last). Baseline: that
   bare loop, same model, seed, optimizer kernels and schedule. ``ratio`` (best window) and
   ``ratio_median_window`` = cnn-lab / bare images per second. Target: ratio >= 0.97. (Its
   windows take each StepEnd as a moment the device had finished that step; a loop that
   reads its losses only every few dozen steps breaks that, and then its epoch figures,
   ``ratio_best_epoch``, are the ones to read.)
2. ``tiny_steps``: optimizer steps per second of a tiny CNN (small_cnn at width 0.5, batch
   32: about 1-2 ms a step on a fast GPU, so a host sync per step is a visible share of it),
   fp32. Built from engine_overhead's own parts: its ``bare_batches`` (the same pixels, from
   cnn-lab's loader) and ``bare_arm`` (the same baseline loop) with a tiny preset and about
   150 batches an epoch. cnn-lab's arm is ``train_events``; each epoch is timed from the
   EpochEnd before it to its last StepEnd, as engine_overhead times it, and both arms
   synchronise the device at each epoch's end and nowhere else (no windows: a loop that
   reads its losses every few dozen steps yields StepEnds in bursts, so only an epoch's last
   one marks a known point in time). The first epoch of every run is warm-up; the
   steady-state epochs give ``ratio`` (best epoch) and ``ratio_median_epoch``, each cnn-lab /
   bare steps per second. Target: ratio >= 0.95. The
   engine's own StepTiming means (data/copy/compute/other ms per step) are printed too: a
   large "other" is Python between steps, a "compute" well above the bare loop's step time is
   syncs or extra kernels.
3. ``mfu``: model FLOPs utilisation of the fast recipe: ResNet-9 (the "resnet9" preset, Page's
   DAWNBench net that airbench descends from) at 32 px through ``train_events`` with bf16
   autocast, channels-last, torch.compile, fused SGD/Nesterov and one-cycle, no augmentation
   (``--mfu-augment`` adds flip and translate). Achieved FLOPs/s = 3 x 2 x forward MACs per
   image (``macs_per_image`` of RunStarted: cnn-lab's summary, as loop.py's ``_model_cost``
   counts it) x images per second. Images per second come from the steady-state epochs
   (epoch 2 on: compile, cuDNN autotuning and warm-up all happen in epoch 1), each timed from
   the EpochEnd before it to its last StepEnd (where the script synchronises the device), so
   validation is left out and the loader's per-epoch set-up and any per-step sync of the
   engine's are in; ``mfu`` uses the median epoch, ``mfu_best_epoch`` the best. The summary's
   ``train_images_per_s`` (which leaves out only the compile steps) is printed beside them.
   Baseline: the GPU's peak dense bf16 FLOPs from a small table by device name (H100 SXM and
   H200 989.4e12, H100 PCIe 756e12, A100 312e12, L4 121e12, RTX 4090 165.2e12); another GPU
   gets its achieved FLOPs/s and ``mfu: null``. No fixed target: it says how far the fast
   recipe is from the hardware. A second baseline, ``bare_fast`` (off with ``--mfu-no-bare``),
   trains the same model with the same recipe (bf16, channels-last, compiled, the engine's own
   optimizer object) in a bare loop on engine_overhead's resident batches: ``ratio_vs_bare`` =
   cnn-lab / bare images per second says whether a low MFU is the model's or the trainer's.

On a machine with a GPU, from the repository root (about 3-5 minutes on an H100; the checks
share a budget of ``--budget-s``, 480 s by default, and one that runs out is reported as such):

    .venv/bin/python benchmarks/gpu_checks.py            # all three checks on cuda:0
    .venv/bin/python benchmarks/gpu_checks.py --quick    # a smoke run, about two minutes
    .venv/bin/python benchmarks/gpu_checks.py --only mfu --mfu-epochs 30

Without a CUDA device it prints ``"skipped": "no CUDA device"`` and exits 0, unless
``--device cpu`` is given: then the same checks run on the CPU at small sizes (compile is slow
there; ``--no-compile`` leaves it out), which is how the script itself is tested. Every size
has a flag (``--overhead-*``, ``--tiny-*``, ``--mfu-*``); left out, it takes the default for
the device and ``--quick``. Exits 1 if a check failed or timed out, 0 otherwise (a missed target
is a result, not an error).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from statistics import median
from typing import Any

import torch
import torch.nn.functional as F

try:  # imported as benchmarks.gpu_checks
    from benchmarks import engine_overhead as overhead
except ImportError:  # run as a script: benchmarks/ itself is on sys.path
    import engine_overhead as overhead  # type: ignore[no-redef]

from cnn_lab.engine.specs import RunSpec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHECKS = ("engine_overhead", "tiny_steps", "mfu")
TARGETS: dict[str, float | None] = {"engine_overhead": 0.97, "tiny_steps": 0.95, "mfu": None}
CHECK_LIMIT_S = {"engine_overhead": 150.0, "tiny_steps": 150.0, "mfu": None}
"""Each check's own time limit; the last one gets whatever is left of ``--budget-s``."""

# Peak dense (no sparsity) bf16 tensor-core FLOPs/s from NVIDIA's data sheets, matched against
# torch.cuda.get_device_name(); the first pattern that matches wins. "H100 80GB HBM3" is SXM.
PEAK_BF16: tuple[tuple[str, str, float], ...] = (
    (r"H100.*PCIe", "H100 PCIe", 756e12),
    (r"H100.*(SXM|HBM3\b)", "H100 SXM", 989.4e12),
    (r"H200", "H200", 989.4e12),
    (r"A100", "A100", 312e12),
    (r"\bL4\b", "L4", 121e12),
    (r"RTX 4090", "RTX 4090", 165.2e12),
)

# Per device kind and --quick: every size flag's default. Each check's batch divides its
# train split (80% of the limit) so that no epoch ends in a partial batch with a new shape.
DEFAULTS: dict[tuple[str, bool], dict[str, Any]] = {
    ("cuda", False): {
        "overhead_limit": 6000, "overhead_batch": 64, "overhead_epochs": 5,
        "overhead_repeat": 5, "overhead_window": 10,
        "tiny_limit": 6000, "tiny_batch": 32, "tiny_epochs": 6, "tiny_repeat": 5,
        "tiny_width": 0.5,
        "mfu_limit": 6000, "mfu_batch": 480, "mfu_epochs": 16, "mfu_size": 32, "mfu_width": 1.0,
    },
    ("cuda", True): {
        "overhead_limit": 4000, "overhead_batch": 64, "overhead_epochs": 3,
        "overhead_repeat": 1, "overhead_window": 10,
        "tiny_limit": 3000, "tiny_batch": 32, "tiny_epochs": 3, "tiny_repeat": 1,
        "tiny_width": 0.5,
        "mfu_limit": 6000, "mfu_batch": 480, "mfu_epochs": 4, "mfu_size": 32, "mfu_width": 1.0,
    },
    ("cpu", False): {
        "overhead_limit": 600, "overhead_batch": 32, "overhead_epochs": 3,
        "overhead_repeat": 2, "overhead_window": 5,
        "tiny_limit": 600, "tiny_batch": 16, "tiny_epochs": 3, "tiny_repeat": 2,
        "tiny_width": 0.5,
        "mfu_limit": 300, "mfu_batch": 48, "mfu_epochs": 3, "mfu_size": 32, "mfu_width": 0.25,
    },
    ("cpu", True): {
        "overhead_limit": 200, "overhead_batch": 16, "overhead_epochs": 2,
        "overhead_repeat": 1, "overhead_window": 5,
        "tiny_limit": 200, "tiny_batch": 16, "tiny_epochs": 2, "tiny_repeat": 1,
        "tiny_width": 0.5,
        "mfu_limit": 200, "mfu_batch": 40, "mfu_epochs": 2, "mfu_size": 32, "mfu_width": 0.25,
    },
}  # fmt: skip


def peak_bf16(gpu_name: str) -> tuple[str | None, float | None]:
    """(table entry, peak dense bf16 FLOPs/s) for a CUDA device name; (None, None) if unknown."""
    for pattern, label, flops in PEAK_BF16:
        if re.search(pattern, gpu_name, re.IGNORECASE):
            return label, flops
    return None, None


# --------------------------------------------------------------------------- shared parts


def make_spec(
    args: argparse.Namespace,
    *,
    preset: str,
    width: float,
    size: int,
    limit: int,
    batch: int,
    epochs: int,
    **train: Any,
) -> RunSpec:
    """A run on sample:shapes; ``train`` overrides TrainSpec fields (fp32 eager otherwise)."""
    return RunSpec.from_dict(
        {
            "dataset": {
                "source": "sample:shapes",
                "limit": limit,
                "image_size": size,
                "augment": train.pop("augment", []),
            },
            "architecture": {"preset": preset, "width": width},
            "train": {
                "epochs": epochs,
                "batch_size": batch,
                "lr": 0.01,
                "optimizer": "adamw",
                "schedule": "onecycle",
                "fused_optimizer": "auto",
                "precision": "fp32",
                "channels_last": True,
                "device": args.device,
                "seed": args.seed,
                **train,
            },
        }
    )


def engine_arm(spec: RunSpec, device: torch.device) -> dict[str, Any]:
    """``train_events`` as a run gets it: its epochs after the first (timed as
    engine_overhead.cnn_lab_arm times them), its RunStarted, StepTimings and summary.

    The device is synchronised at each epoch's last StepEnd (and at EpochEnd, where the
    engine has already synchronised) before the stamp, as the bare loops do at their epochs'
    ends: the epoch's time holds whether or not the engine waits for the device every step.
    Only the first and last stamps of an epoch are meaningful.
    """
    from cnn_lab.engine.train.events import (
        EpochEnd,
        RunFinished,
        RunStarted,
        StepEnd,
        StepTiming,
    )
    from cnn_lab.engine.train.loop import train_events

    epochs: list[overhead.Epoch] = []
    timings: list[StepTiming] = []
    started: RunStarted | None = None
    summary: dict[str, Any] = {}
    stamps: list[float] | None = None
    for event in train_events(spec):
        if isinstance(event, StepEnd):
            if stamps is not None:
                assert started is not None
                if len(stamps) == started.steps_per_epoch:  # the epoch's last step
                    overhead.sync(device)
                stamps.append(time.perf_counter())
        elif isinstance(event, EpochEnd):
            overhead.sync(device)
            if stamps is not None:
                assert started is not None
                epochs.append(overhead.Epoch(stamps, started.train_images))
            stamps = [time.perf_counter()]  # the next epoch's work starts here
        elif isinstance(event, StepTiming):
            if event.step > (started.steps_per_epoch if started else 0):  # after warm-up
                timings.append(event)
        elif isinstance(event, RunStarted):
            started = event
        elif isinstance(event, RunFinished):
            if event.status != "completed":
                raise RuntimeError(f"cnn-lab's run ended {event.status}: {event.reason}")
            summary = dict(event.summary)
    assert started is not None
    return {"epochs": epochs, "started": started, "timings": timings, "summary": summary}


def steps_per_s(epochs: list[overhead.Epoch]) -> list[float]:
    """Steps per second of each whole epoch (only its first and last stamps are read)."""
    return [(len(e.stamps) - 1) / (e.stamps[-1] - e.stamps[0]) for e in epochs]


def timing_means(timings: list[Any]) -> dict[str, float] | None:
    """The engine's StepTiming parts as step-weighted means (ms per step)."""
    steps = sum(t.steps for t in timings)
    if not steps:
        return None
    parts = ("data_ms", "copy_ms", "compute_ms", "other_ms", "step_ms")
    return {p: round(sum(getattr(t, p) * t.steps for t in timings) / steps, 3) for p in parts}


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b > 0 else None


# --------------------------------------------------------------------------- the checks


def overhead_command(args: argparse.Namespace) -> list[str]:
    return [
        sys.executable,
        str(HERE / "engine_overhead.py"),
        "--device", args.device,
        "--limit", str(args.overhead_limit),
        "--batch-size", str(args.overhead_batch),
        "--epochs", str(args.overhead_epochs),
        "--repeat", str(args.overhead_repeat),
        "--window", str(args.overhead_window),
        "--seed", str(args.seed),
    ]  # fmt: skip


def check_tiny_steps(args: argparse.Namespace) -> dict[str, Any]:
    """Steps per second of a tiny CNN: ``train_events`` vs. engine_overhead's bare loop."""
    from cnn_lab.engine.train.devices import resolve_device

    device = resolve_device(args.device)
    spec = make_spec(
        args,
        preset=args.tiny_preset,
        width=args.tiny_width,
        size=32,
        limit=args.tiny_limit,
        batch=args.tiny_batch,
        epochs=args.tiny_epochs,
        fused_optimizer="fused",  # what bare_arm asks torch for (fused_optimizer != "off")
    )
    x_all, y_all, classes = overhead.bare_batches(spec, device)
    batches = -(-len(x_all) // args.tiny_batch)
    ours, bare, timings = [], [], []
    started = None
    for _ in range(args.tiny_repeat):  # interleaved so drift in machine load hits both arms
        run = engine_arm(spec, device)
        ours += run["epochs"]
        timings += run["timings"]
        started = run["started"]
        # A window of a whole epoch: the bare loop synchronises at its epochs' ends only.
        bare += overhead.bare_arm(spec, x_all, y_all, classes, device, batches)
    ours_epoch, bare_epoch = steps_per_s(ours), steps_per_s(bare)
    assert started is not None
    return {
        "cnn_lab_steps_per_s": round(max(ours_epoch), 1),
        "baseline_bare_loop_steps_per_s": round(max(bare_epoch), 1),
        "ratio": ratio(max(ours_epoch), max(bare_epoch)),
        "ratio_median_epoch": ratio(median(ours_epoch), median(bare_epoch)),
        "cnn_lab_step_ms_median": round(1000 / median(ours_epoch), 3),
        "bare_step_ms_median": round(1000 / median(bare_epoch), 3),
        "cnn_lab_step_timing_ms": timing_means(timings),
        "timing": "steady-state epochs (each run's first is warm-up), EpochEnd to last "
        "StepEnd; both arms synchronise at epoch ends only",
        "baseline": "engine_overhead.bare_arm on engine_overhead.bare_batches (reused)",
        "epochs_timed_per_arm": len(ours),
        "steps_per_epoch": batches,
        "preset": f"{args.tiny_preset} (width {args.tiny_width})",
        "params": started.params,
        "macs_per_image": started.macs_per_image,
        "train_images": len(x_all),
        "batch_size": args.tiny_batch,
        "optimizer": f"adamw ({overhead.optimizer_kernels(spec, device)})",
        "precision": "fp32",
        "data_on_device": started.data_on_device,
        "device": started.device,
    }


def bare_fast_arm(
    spec: RunSpec,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    classes: int,
    device: torch.device,
) -> list[overhead.Epoch]:
    """The fast recipe in a bare loop: the same network compiled (or not) as the engine does,
    bf16 autocast, label smoothing, the engine's own optimizer object and torch's one-cycle,
    on resident pre-normalised batches; one sync per epoch. Every epoch after the first is
    timed."""
    from cnn_lab.engine.models import InputShape, build_model
    from cnn_lab.engine.train.optimizers import build_optimizer

    t = spec.train
    torch.manual_seed(t.seed)
    _, channels, height, width = x_all.shape
    shape = InputShape(channels=channels, height=height, width=width, classes=classes)
    model = build_model(spec.architecture, shape).to(device, memory_format=torch.channels_last)
    net = torch.compile(model) if t.compile else model
    opt = build_optimizer(model.parameters(), t, device)
    batches = list(zip(x_all.split(t.batch_size), y_all.split(t.batch_size), strict=True))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=t.lr, total_steps=len(batches) * t.epochs
    )
    dtype = torch.bfloat16 if t.precision == "bf16" else None
    epochs: list[overhead.Epoch] = []
    model.train()
    for epoch in range(1, t.epochs + 1):
        overhead.sync(device)
        stamps = [time.perf_counter()]
        for x, y in batches:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(net(x).float(), y, label_smoothing=t.label_smoothing)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sched.step()
            stamps.append(time.perf_counter())  # unsynced: only the last one is read
        overhead.sync(device)
        stamps[-1] = time.perf_counter()
        if epoch > 1:
            epochs.append(overhead.Epoch(stamps, len(x_all)))
    return epochs


def check_mfu(args: argparse.Namespace) -> dict[str, Any]:
    """Model FLOPs utilisation of the fast recipe through ``train_events``."""
    from cnn_lab.engine.train.devices import resolve_device

    device = resolve_device(args.device)
    # A translation of at most 4 pixels, as time_to_accuracy.py's fast recipe.
    shift = min(1.0, 4 / (0.125 * args.mfu_size))
    augment = [{"name": "hflip", "strength": 1.0}, {"name": "translate", "strength": shift}]
    spec = make_spec(
        args,
        preset=args.mfu_preset,
        width=args.mfu_width,
        size=args.mfu_size,
        limit=args.mfu_limit,
        batch=args.mfu_batch,
        epochs=args.mfu_epochs,
        augment=augment if args.mfu_augment else [],
        optimizer="sgd",
        lr=0.05,  # the rate does not change the speed; a low one cannot diverge and fail
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        label_smoothing=0.1,
        precision="bf16",
        channels_last=True,
        compile=args.compile,
    )
    run = engine_arm(spec, device)
    started, summary = run["started"], run["summary"]
    per_epoch = [e.images / (e.stamps[-1] - e.stamps[0]) for e in run["epochs"]]
    flops_per_image = 3 * 2 * started.macs_per_image  # forward, and backward at twice forward
    achieved = flops_per_image * median(per_epoch)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    label, peak = peak_bf16(gpu) if gpu else (None, None)
    summary_rate = summary.get("train_images_per_s")
    result: dict[str, Any] = {
        "mfu": round(achieved / peak, 4) if peak else None,
        "mfu_best_epoch": round(flops_per_image * max(per_epoch) / peak, 4) if peak else None,
        "achieved_flops_per_s": float(f"{achieved:.4g}"),
        "peak_bf16_flops_per_s": peak,
        "peak_entry": label,
        "images_per_s_median_epoch": round(median(per_epoch)),
        "images_per_s_best_epoch": round(max(per_epoch)),
        "summary_train_images_per_s": round(summary_rate) if summary_rate else None,
        "timing": (
            "steady-state epochs 2.. (median; EpochEnd to last StepEnd). "
            "summary_train_images_per_s is the run summary's, which leaves out only compile steps"
        ),
        "flops_per_image": flops_per_image,
        "flops_formula": "3 x 2 x macs_per_image (RunStarted, from models.summary)",
        "macs_per_image": started.macs_per_image,
        "compile_s": round(summary["compile_s"], 1) if summary.get("compile_s") else None,
        "cnn_lab_step_timing_ms": timing_means(run["timings"]),
        "epochs_timed": len(per_epoch),
        "steps_per_epoch": started.steps_per_epoch,
        "preset": f"{args.mfu_preset} (width {args.mfu_width})",
        "params": started.params,
        "image_size": args.mfu_size,
        "train_images": started.train_images,
        "batch_size": args.mfu_batch,
        "augment": started.augment or "none",
        "recipe": "bf16, channels-last, "
        + ("torch.compile" if args.compile else "eager (--no-compile)")
        + ", sgd nesterov one-cycle, label smoothing 0.1",
        "data_on_device": started.data_on_device,
        "device": started.device,
    }
    if args.mfu_bare:
        x_all, y_all, classes = overhead.bare_batches(spec, device)
        bare = bare_fast_arm(spec, x_all, y_all, classes, device)
        bare_rates = [e.images / (e.stamps[-1] - e.stamps[0]) for e in bare]
        result["bare_fast_images_per_s_median_epoch"] = round(median(bare_rates))
        result["ratio_vs_bare"] = ratio(median(per_epoch), median(bare_rates))
        result["mfu_bare"] = round(flops_per_image * median(bare_rates) / peak, 4) if peak else None
    return result


# --------------------------------------------------------------------------- running them


def run_child(command: list[str], timeout: float) -> dict[str, Any]:
    """Run one check's process; its last stdout line is its JSON. Its stderr passes through
    (progress, compile warnings) and its tail is kept for the report if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout ends compile workers too
    )
    tail: collections.deque[str] = collections.deque(maxlen=15)
    out: list[str] = []

    def relay() -> None:  # stderr passes through, its tail is kept
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line.rstrip())

    def collect() -> None:
        assert proc.stdout is not None
        out.extend(proc.stdout)

    readers = [threading.Thread(target=f, daemon=True) for f in (relay, collect)]
    for reader in readers:
        reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for reader in readers:
        reader.join(timeout=5)
    if timed_out:
        return {"error": f"timed out after {timeout:.0f} s", "stderr_tail": list(tail)}
    wall = round(time.perf_counter() - start, 1)
    lines = [line for line in out if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {
            "error": f"exit status {proc.returncode}",
            "stderr_tail": list(tail),
            "wall_s": wall,
        }
    result = json.loads(lines[-1])
    result["wall_s"] = wall
    return result


def judge(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """Add the check's target and whether its primary ratio meets it."""
    target = TARGETS[name]
    result["target"] = f"ratio >= {target}" if target is not None else None
    if target is not None and isinstance(result.get("ratio"), float):
        result["meets_target"] = result["ratio"] >= target
    return result


def child_command(name: str, args: argparse.Namespace) -> list[str]:
    if name == "engine_overhead":
        return overhead_command(args)
    return [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:], "--only", name]


def run_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One check in this process (engine_overhead is always its own script's process)."""
    if name == "engine_overhead":
        return run_child(overhead_command(args), args.budget_s)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CNN_LAB_CACHE", str(Path(tmp) / "cache"))
        return check_tiny_steps(args) if name == "tiny_steps" else check_mfu(args)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (small sizes)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: the smallest sizes")
    parser.add_argument("--only", choices=CHECKS, help="run one check here and print its JSON")
    parser.add_argument("--budget-s", type=float, default=480.0, help="for all checks together")
    parser.add_argument("--seed", type=int, default=0)
    size = "images (80%% train); default by device and --quick"
    group = parser.add_argument_group("1. engine_overhead (engine_overhead.py's own flags)")
    group.add_argument("--overhead-limit", type=int, help=size)
    group.add_argument("--overhead-batch", type=int)
    group.add_argument("--overhead-epochs", type=int, help="per run; the first is warm-up")
    group.add_argument("--overhead-repeat", type=int)
    group.add_argument("--overhead-window", type=int, help="steps per timed window")
    group = parser.add_argument_group("2. tiny_steps")
    group.add_argument("--tiny-preset", default="small_cnn")
    group.add_argument("--tiny-width", type=float, help="the preset's width multiplier")
    group.add_argument("--tiny-limit", type=int, help=size)
    group.add_argument("--tiny-batch", type=int)
    group.add_argument("--tiny-epochs", type=int, help="per run; the first is warm-up")
    group.add_argument("--tiny-repeat", type=int)
    group = parser.add_argument_group("3. mfu")
    group.add_argument("--mfu-preset", default="resnet9")
    group.add_argument("--mfu-width", type=float, help="the preset's width multiplier")
    group.add_argument("--mfu-size", type=int, help="image side (shapes is 32 natively)")
    group.add_argument("--mfu-limit", type=int, help=size)
    group.add_argument("--mfu-batch", type=int)
    group.add_argument("--mfu-epochs", type=int, help="the first is warm-up (and compile)")
    group.add_argument("--mfu-augment", action="store_true", help="add flip and translate")
    group.add_argument("--mfu-no-bare", dest="mfu_bare", action="store_false")
    group.add_argument("--no-compile", dest="compile", action="store_false")
    args = parser.parse_args()
    kind = "cpu" if args.device == "cpu" else "cuda"
    if not (args.device == "cpu" or re.fullmatch(r"cuda(:\d+)?", args.device)):
        parser.error("--device is cuda, cuda:N or cpu")
    for key, value in DEFAULTS[(kind, args.quick)].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for prefix in ("overhead", "tiny", "mfu"):
        if getattr(args, f"{prefix}_epochs") < 2:
            parser.error(f"--{prefix}-epochs must be at least 2: the first is warm-up")
    return args


def main() -> int:
    args = parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            json.dumps(
                {
                    "benchmark": "gpu_checks",
                    "skipped": "no CUDA device",
                    "hint": "run on a machine with a GPU, or pass --device cpu to test the "
                    "script at small sizes",
                }
            )
        )
        return 0
    if args.only:
        print(json.dumps(judge(args.only, run_one(args.only, args))))
        return 0

    started = time.perf_counter()
    results: dict[str, Any] = {}
    for i, name in enumerate(CHECKS):
        left = args.budget_s - (time.perf_counter() - started)
        own = CHECK_LIMIT_S[name]
        timeout = left if own is None or i == len(CHECKS) - 1 else min(own, left)
        if timeout < 10:
            results[name] = {"error": "not run: the --budget-s was spent"}
            continue
        print(f"gpu_checks: {name} (up to {timeout:.0f} s)", file=sys.stderr, flush=True)
        results[name] = judge(name, run_child(child_command(name, args), timeout))
    failed = [name for name, r in results.items() if "error" in r]
    met = [r.get("meets_target") for r in results.values() if "meets_target" in r]
    device = next((r["device"] for r in results.values() if "device" in r), args.device)
    print(
        json.dumps(
            {
                "benchmark": "gpu_checks",
                "device": device,
                "quick": args.quick,
                "all_targets_met": all(met) if met and not failed else None,
                "failed": failed,
                "checks": results,
                "torch": torch.__version__,
                "wall_s": round(time.perf_counter() - started, 1),
            }
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
