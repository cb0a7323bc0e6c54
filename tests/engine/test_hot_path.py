"""The training loop's hot path: exact accumulation, host reads at the logging interval,
out of memory handled outside the except block, deterministic mode, the ETA.

These compare one run with another on the same machine and the same kernels; where a sum is
taken in another order (one batch of 64 against four of 16), the tolerance is float32
rounding over a few steps, far below what a wrong weighting moves (a factor in a gradient).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from cnn_lab.engine.jobs.job import run_job
from cnn_lab.engine.models import InputShape, register_preset
from cnn_lab.engine.specs import ArchitectureSpec, RunSpec
from cnn_lab.engine.store import run_files_dir
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train import checkpoint as ck
from cnn_lab.engine.train.events import RunFinished, RunStarted, StepEnd
from cnn_lab.engine.train.loop import MAX_BAD_STEPS, train_events
from cnn_lab.engine.train.step import Windows

# GroupNorm, not BatchNorm: a sample's output must not depend on who shares its batch, or
# a batch of 64 and four of 16 would differ for a reason other than accumulation.
LAYERS = [
    {"kind": "conv2d", "params": {"out_channels": 8}},
    {"kind": "groupnorm", "params": {"groups": 4}},
    {"kind": "relu"},
    {"kind": "global_avg_pool"},
    {"kind": "linear"},
]


def accumulation_spec(batch: int, accumulation: int, **train: Any) -> RunSpec:
    return RunSpec.from_dict(
        {
            # 270 images: 220 train, so batches of 64 end in one of 28, and windows of 4x16
            # end in a short window of two unequal micro-batches (16 and 12).
            "dataset": {"source": "sample:shapes", "limit": 270, "image_size": 16},
            "architecture": {"preset": "custom", "layers": LAYERS},
            "train": {
                "epochs": 1,
                "batch_size": batch,
                "grad_accumulation": accumulation,
                "device": "cpu",
                "optimizer": "sgd",
                "momentum": 0.0,
                "weight_decay": 0.0,
                "schedule": "constant",
                "lr": 0.5,
                **train,
            },
        }
    )


def final_weights(spec: RunSpec, folder: Path) -> tuple[dict[str, torch.Tensor], RunStarted]:
    events = list(train_events(spec, checkpoint_dir=folder))
    assert events[-1].status == st.COMPLETED, events[-1].reason
    return ck.load_checkpoint(ck.checkpoint_path(folder, ck.LAST)).model, events[0]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6, msg=key)


def test_windows_know_each_window_s_true_size() -> None:
    windows = Windows(images=216, batch_size=16, accumulation=4)
    assert (windows.batches, windows.count) == (14, 4)
    assert [windows.micro_batches(w) for w in range(4)] == [4, 4, 4, 2]
    assert [windows.window_images(w) for w in range(4)] == [64, 64, 64, 24]


def test_batch_16_times_4_equals_batch_64_including_the_short_last_window(
    tmp_path: Path,
) -> None:
    big, started = final_weights(accumulation_spec(64, 1), tmp_path / "big")
    assert started.train_images == 220 and started.steps_per_epoch == 4
    accumulated, started = final_weights(accumulation_spec(16, 4), tmp_path / "accumulated")
    assert started.steps_per_epoch == 4
    assert_same_weights(big, accumulated)


@pytest.mark.slow
def test_accumulation_under_two_gloo_processes_equals_one_big_batch(db_path: Path) -> None:
    single = run_job(accumulation_spec(64, 1), db_path, sample_system=False)
    parallel = run_job(accumulation_spec(16, 4, world_size=2), db_path, sample_system=False)
    assert single.status == parallel.status == st.COMPLETED, parallel.reason
    a = ck.load_checkpoint(run_files_dir(db_path, single.id) / "last.ckpt").model
    b = ck.load_checkpoint(run_files_dir(db_path, parallel.id) / "last.ckpt").model
    assert_same_weights(a, b)


def test_ddp_all_reduces_once_per_accumulation_window(tmp_path: Path) -> None:
    """``no_sync`` on every micro-batch but the last: one gradient all-reduce per step."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from cnn_lab.engine.data.loader import Batch
    from cnn_lab.engine.specs import TrainSpec
    from cnn_lab.engine.train.step import train_step

    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        torch.manual_seed(0)
        ddp = DistributedDataParallel(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)))
        reductions: list[int] = []

        def count(state, bucket):  # type: ignore[no-untyped-def]  (DDP reads no string hints)
            reductions.append(bucket.index())
            future = torch.futures.Future()
            future.set_result(bucket.buffer())
            return future

        ddp.register_comm_hook(None, count)
        labels = torch.tensor([0, 1, 2, 0])
        batches = iter([Batch(torch.randn(4, 3, 2, 2), labels, labels) for _ in range(4)])
        train_step(
            ddp, ddp, batches, 4, 16, t=TrainSpec(), world_size=1, loss_weights=None, scaler=None
        )
        assert len(reductions) == 1
    finally:
        dist.destroy_process_group()


# ---- the host reads losses at the logging interval


def quick(**train: Any) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 400, "image_size": 16},
            "architecture": {"preset": "small_cnn", "width": 0.25},
            "train": {"epochs": 2, "batch_size": 32, "device": "cpu", **train},
        }
    )


def step_losses(events: list[Any]) -> list[tuple[int, int, float, float]]:
    return [(e.step, e.epoch, e.loss, e.lr) for e in events if isinstance(e, StepEnd)]


@pytest.mark.parametrize("lagged", [False, True], ids=["read-at-once", "read-late-as-on-a-gpu"])
def test_a_longer_logging_interval_gives_the_same_step_events(
    lagged: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnn_lab.engine.train import loop
    from cnn_lab.engine.train.step_log import StepLog

    every_step = list(train_events(quick()))
    monkeypatch.setattr(loop, "StepLog", functools.partial(StepLog, lagged=lagged))
    every_eight = list(train_events(quick(), log_every=8))
    assert step_losses(every_eight) == step_losses(every_step)
    assert every_eight[-1].status == st.COMPLETED
    assert [type(e) for e in every_eight if not isinstance(e, StepEnd)][-1] is RunFinished


class HostReads:
    """Counts reads of tensor values by the host: ``item``, ``tolist`` and ``float()``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.counting = False
        for name in ("item", "tolist", "__float__"):
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counted(original))

    def _counted(self, original: Any) -> Any:
        def read(tensor: torch.Tensor, *args: Any) -> Any:
            if self.counting:
                self.count += 1
            return original(tensor, *args)

        return read


def test_losses_reach_the_host_once_per_logging_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = HostReads(monkeypatch)
    steps = 0
    events = train_events(quick(epochs=1), log_every=8)
    for event in events:
        if isinstance(event, RunStarted):
            reads.counting = True  # from the first step on
        elif isinstance(event, StepEnd):
            steps += 1
        elif isinstance(event, RunFinished):
            reads.counting = False
    assert steps == 10
    # Two interval reads (steps 1-8 and 9-10), then the epoch's end: its loss and accuracy
    # sums and the validation's (4 reads). A read per step would make it 14 or more.
    assert reads.count <= 2 + 4, reads.count


def test_stop_still_takes_one_step_with_losses_pending() -> None:
    calls = {"n": 0, "started": False}

    def should_stop() -> bool:  # polled once after each step: asked during step 5
        calls["n"] += calls["started"]
        return calls["n"] >= 5

    events = []
    for event in train_events(quick(epochs=3), should_stop=should_stop, log_every=8):
        calls["started"] = True  # the data preparation polls it too
        events.append(event)
    last = events[-1]
    assert last.status == st.STOPPED and last.reason == "Stopped by request at step 5."
    # Steps 1-5 were still waiting for the interval's read: they were read before stopping.
    assert [e.step for e in events if isinstance(e, StepEnd)] == [1, 2, 3, 4, 5]


@register_preset("test_nan_from_start", "NaN logits (for the non-finite bound)")
def _nan_net(spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    class NanNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(shape.channels * shape.height * shape.width, shape.classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x.flatten(1)) * float("nan")

    return NanNet()


@pytest.mark.parametrize("lagged", [False, True], ids=["read-at-once", "read-late-as-on-a-gpu"])
def test_non_finite_losses_are_caught_within_the_bound(
    lagged: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnn_lab.engine.train import loop
    from cnn_lab.engine.train.step_log import StepLog

    monkeypatch.setattr(loop, "StepLog", functools.partial(StepLog, lagged=lagged))
    spec = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 400, "image_size": 16},
            "architecture": {"preset": "test_nan_from_start"},
            "train": {"epochs": 3, "batch_size": 16, "device": "cpu"},
        }
    )
    events = list(train_events(spec, log_every=8))
    finished = events[-1]
    assert finished.status == st.FAILED
    assert f"at step {MAX_BAD_STEPS}" in finished.reason
    # Reported up to the third bad step; at most one interval (two when read late) more
    # was trained, and the summary says how far.
    assert sum(isinstance(e, StepEnd) for e in events) == MAX_BAD_STEPS
    assert finished.summary["steps"] == (16 if lagged else 8)


# ---- out of memory

_SEEN: dict[str, Any] = {}


@register_preset("test_hungry_checks_exception", "Out of memory above batch 8")
def _hungry(spec: ArchitectureSpec, shape: InputShape) -> nn.Module:
    class Hungry(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(shape.channels * shape.height * shape.width, shape.classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if len(x) > 8:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            _SEEN.setdefault("exception_while_probing", sys.exc_info()[0])
            return self.linear(x.flatten(1))

    return Hungry()


def test_out_of_memory_probes_outside_the_except_block_and_keeps_the_effective_batch() -> None:
    _SEEN.clear()
    spec = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 400, "image_size": 16},
            "architecture": {"preset": "test_hungry_checks_exception"},
            "train": {"epochs": 1, "batch_size": 32, "grad_accumulation": 2, "device": "cpu"},
        }
    )
    finished = list(train_events(spec))[-1]
    assert finished.status == st.FAILED
    assert finished.summary["suggested_batch_size"] == 8
    # 32 x 2 = 64 images a step: 8 x 8 keeps it.
    assert finished.hint == (
        "Batch size 8 fits: retry with it (and grad accumulation 8 to keep the effective batch)."
    )
    assert _SEEN["exception_while_probing"] is None  # the traceback was let go first


# ---- deterministic training


def test_deterministic_mode_is_on_for_the_run_and_put_back_after() -> None:
    seen = []
    for event in train_events(quick(epochs=1, max_steps=2, deterministic=True)):
        if isinstance(event, StepEnd):
            seen.append(torch.are_deterministic_algorithms_enabled())
    assert seen == [True, True]
    assert not torch.are_deterministic_algorithms_enabled()


def test_deterministic_refuses_cudnn_autotuning_and_keeps_old_spec_hashes() -> None:
    from cnn_lab.engine.errors import SpecError

    with pytest.raises(SpecError, match="cudnn_benchmark off"):
        quick(deterministic=True, cudnn_benchmark=True)
    assert quick().spec_hash() == quick(deterministic=False).spec_hash()
    assert quick(deterministic=True).spec_hash() != quick().spec_hash()
    assert "deterministic" not in quick().model_dump_json(exclude_defaults=True)


# ---- the time left counts validation


def test_eta_counts_the_remaining_validation_passes() -> None:
    from cnn_lab.engine.train.accounting import Accounting
    from cnn_lab.engine.train.options import Compiled

    now = [0.0]
    books = Accounting(
        Compiled(nn.Linear(1, 1), False),
        autotuning=False,
        steps_per_epoch=10,
        train_images=100,
        val_images=30,
        clock=lambda: now[0],
    )
    progress = ck.Progress(epoch=2, batch=0, step=10, total_steps=30, epochs_done=1)
    progress.train_time_s = 10.0  # 1 s a step
    books.evaluated(4.0)
    # 20 steps at 1 s, and 2 validations of 4 s.
    assert books.eta_s(progress, 0.0) == pytest.approx(28.0)
    fresh = ck.Progress(epoch=1, batch=0, step=5, total_steps=30)
    estimate = Accounting(
        Compiled(nn.Linear(1, 1), False),
        autotuning=False,
        steps_per_epoch=10,
        train_images=100,
        val_images=30,
    ).eta_s(fresh, 5.0)
    # Before a validation is timed: 30 images at a third of 0.1 s per training image each.
    assert estimate == pytest.approx(25 * 1.0 + 3 * 30 * 0.1 / 3)


def test_the_lagged_step_log_hands_back_each_interval_one_read_later_and_drains_all() -> None:
    """The GPU's order of reads, checked on the CPU: an interval's losses come back at the
    next read (their copy had an interval to finish), and a drain returns everything."""
    from cnn_lab.engine.train.step_log import LoggedStep, StepLog

    log = StepLog(torch.device("cpu"), every=3, lagged=True)

    def add(step: int) -> None:
        log.add(torch.tensor(float(step)), LoggedStep(step, 1, 0.1, 0.01, 8, 0.0, 0.0, 0.0))

    read: list[tuple[int, float]] = []
    for step in range(1, 8):
        add(step)
        if log.due:
            read += [(s.step, loss) for s, loss in log.read()]
            if step == 3:
                assert read == []  # steps 1-3 are still being copied
    assert [s for s, _ in read] == [1, 2, 3]  # read at step 6
    assert log.pending == 4  # 4-6 in flight, 7 waiting
    read += [(s.step, loss) for s, loss in log.read(drain=True)]
    assert read == [(s, float(s)) for s in range(1, 8)]
    assert log.pending == 0
