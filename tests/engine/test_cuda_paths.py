"""The CUDA paths, on a real GPU: everything else in the suite runs on the CPU.

What only a GPU shows: mixed precision (bf16, and fp16 with its scaler), channels-last,
cuDNN autotuning and fused optimizer kernels really run; the training images really live on
the device with their augmentation; NVML reads the real board and the sweep planner packs
trials onto it; two sweep trials really share cuda:0; evaluation and prediction on the GPU
agree with the CPU; and the batch-size finder measures steps with the CUDA allocator's
counters. The GPU's faults (a real out-of-memory error, a real device-side assert) are tested
with the other faults, in tests/faults/test_gpu_faults.py.

Without CUDA every test is skipped. ``CNN_LAB_TEST_DEVICE=cpu`` runs them on the CPU instead
(fp16 becomes bf16, NVML is skipped), to check the tests' own logic on a machine without a GPU.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from cnn_lab.engine.cli.main import main
from cnn_lab.engine.jobs.job import child_main, create_run, run_job
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunRecord, RunStore
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train.events import RunFinished, RunStarted, StepEnd

FORCED = os.environ.get("CNN_LAB_TEST_DEVICE", "").strip().lower()
ON_CUDA = FORCED != "cpu"
DEVICE = "cuda:0" if ON_CUDA else "cpu"
"""The slot every test trains on: the first GPU, or the CPU when forced there."""

pytestmark = pytest.mark.skipif(
    ON_CUDA and not torch.cuda.is_available(),
    reason="needs CUDA (CNN_LAB_TEST_DEVICE=cpu runs these tests' logic on the CPU)",
)
needs_cuda = pytest.mark.skipif(not ON_CUDA, reason="reads the real GPU")

LIMIT = 1200  # 10 classes of 32×32 images: 960 train / 240 val (or 720/240/240 with a test)
BATCH = 64
EPOCHS = 2
MIB = 1 << 20
CHILD_TIMEOUT_S = 180.0


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _one_data_cache(one_data_cache: Path) -> None:
    """The tests share one prepared sample (tests/conftest.py's ``one_data_cache``)."""


def spec_of(
    train: dict[str, Any] | None = None,
    dataset: dict[str, Any] | None = None,
) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": LIMIT, **(dataset or {})},
            "architecture": {"preset": "small_cnn"},
            "train": {"epochs": EPOCHS, "batch_size": BATCH, "device": DEVICE, **(train or {})},
        }
    )


def speed_options(precision: str) -> dict[str, Any]:
    """Every speed option at its GPU setting (what a CPU refuses stays automatic there)."""
    return {
        "precision": precision if ON_CUDA or precision != "fp16" else "bf16",
        "channels_last": True,
        "cudnn_benchmark": True if ON_CUDA else None,
        "fused_optimizer": "fused" if ON_CUDA else "auto",
        "optimizer": "adamw",
    }


def nvml_index() -> int:
    """NVML's number for cuda:0 (its samples are keyed ``gpu{i}.*``)."""
    from cnn_lab.engine.monitor.nvml import nvml_index_for_uuid

    found = nvml_index_for_uuid(str(torch.cuda.get_device_properties(0).uuid))
    return 0 if found is None else found


def device_name() -> str:
    return f"{DEVICE} ({torch.cuda.get_device_name(0)})" if ON_CUDA else "cpu ("


def assert_trained_here(db: Path, run_id: int) -> RunRecord:
    """The run completed on DEVICE with finite losses, and its metrics and samples are stored."""
    with RunStore.open(db) as store:
        record = store.get_run(run_id)
        keys = store.metric_keys(run_id)
        losses = [p.value for p in store.metrics(run_id, "train.loss")]
        cpu = store.system_samples(run_id, "cpu.percent")
        gpu = {}
        if ON_CUDA:
            i = nvml_index()
            gpu = {
                key: [s.value for s in store.system_samples(run_id, f"gpu{i}.{key}")]
                for key in ("util_percent", "mem_used_mb", "mem_total_mb")
            }
    assert record.status == st.COMPLETED, (record.reason, record.hint)
    summary = record.summary
    assert summary["device"].startswith(device_name()), summary["device"]
    assert summary["epochs"] == EPOCHS
    assert losses and len(losses) == summary["steps"] == keys["train.loss"]
    assert all(math.isfinite(v) for v in losses), losses
    assert summary["final_train_loss"] is not None and math.isfinite(summary["final_train_loss"])
    assert keys["val.accuracy"] == keys["epoch.seconds"] == EPOCHS
    assert 0.0 <= summary["best_val_accuracy"] <= 1.0
    assert cpu, "no system sample was stored"
    if ON_CUDA:
        util, used, total = gpu["util_percent"], gpu["mem_used_mb"], gpu["mem_total_mb"]
        assert util and used and total, f"no NVML sample of gpu{nvml_index()}: {gpu}"
        assert all(0.0 <= u <= 100.0 for u in util), util
        card_mb = torch.cuda.get_device_properties(0).total_memory / MIB
        assert all(t == pytest.approx(card_mb, rel=0.05) for t in total), (total, card_mb)
        assert 0.0 < max(used) <= max(total)
    return record


def child_events(
    db: Path, spec: RunSpec, target: Any = child_main
) -> tuple[int, list[Any], int | None]:
    """Train ``spec`` in a spawned job process as the window's job queue does."""
    ctx = multiprocessing.get_context("spawn")
    with RunStore.open(db) as store:
        run_id = create_run(store, spec)
    reader, writer = ctx.Pipe(duplex=False)
    stop = ctx.Event()
    process = ctx.Process(target=target, args=(spec.to_json(), str(db), run_id, writer, stop))
    process.start()
    writer.close()  # the child holds the only write end: EOF means it is done
    events: list[Any] = []
    try:
        while True:
            if not reader.poll(CHILD_TIMEOUT_S):
                pytest.fail(f"the job process sent nothing for {CHILD_TIMEOUT_S} s")
            try:
                events.append(reader.recv())
            except EOFError:
                break
        process.join(CHILD_TIMEOUT_S)
    finally:
        if process.is_alive():
            process.kill()
            process.join(10)
        reader.close()
    return run_id, events, process.exitcode


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("path", ["cli", "job_process"])
def test_a_run_trains_with_mixed_precision_and_every_speed_option(
    path: str, db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # bf16 through `cnn-lab train`, fp16 (gradient scaler) through the GUI's job process.
    precision = "bf16" if path == "cli" else "fp16"
    spec = spec_of(speed_options(precision))
    if path == "cli":
        spec_file = tmp_path / "spec.json"
        spec_file.write_text(spec.to_json(), encoding="utf-8")
        code = main(["train", "--spec", str(spec_file), "--db", str(db_path), "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        result = json.loads(captured.out.splitlines()[-1])
        assert result["status"] == st.COMPLETED
        assert result["device"].startswith(device_name())
        run_id = result["run_id"]
        if ON_CUDA:  # configure_backends applied the spec's cudnn_benchmark in this process
            assert torch.backends.cudnn.benchmark is True
    else:
        run_id, events, exitcode = child_events(db_path, spec)
        assert exitcode == 0
        started = [e for e in events if isinstance(e, RunStarted)]
        finished = [e for e in events if isinstance(e, RunFinished)]
        assert len(started) == 1 and started[0].device.startswith(device_name())
        assert len(finished) == 1 and finished[0].status == st.COMPLETED, finished
        steps = [e for e in events if isinstance(e, StepEnd)]
        assert steps and all(math.isfinite(e.loss) for e in steps)
        if ON_CUDA:
            assert started[0].nvml_index == nvml_index()
    record = assert_trained_here(db_path, run_id)
    stored = RunSpec.from_json(record.spec_json).train
    assert (stored.precision, stored.channels_last) == (spec.train.precision, True)


def test_the_training_images_live_on_the_device_with_their_augmentation(db_path: Path) -> None:
    spec = spec_of(
        {**speed_options("bf16"), "data_placement": "device"},
        {
            "augment": [{"name": "hflip"}, {"name": "translate", "strength": 0.5}],
            "mixup_alpha": 0.2,
        },
    )
    events: list[Any] = []
    record = run_job(spec, db_path, emit=events.append, flush_interval_s=0.2)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.data_on_device is True
    assert "hflip" in started.augment and "translate" in started.augment
    assert_trained_here(db_path, record.id)


# --------------------------------------------------------------------------- NVML and slots


@needs_cuda
def test_nvml_reports_the_real_gpu_and_the_planner_packs_tiny_trials_on_it() -> None:
    from cnn_lab.engine.monitor.nvml import NvmlSampler, gpu_inventory
    from cnn_lab.engine.search import SearchSpec
    from cnn_lab.engine.search.slots import machine_gpus, plan_for, plan_slots, trial_memory_bytes

    inventory = gpu_inventory()
    assert inventory.available, inventory.message
    index = nvml_index()
    gpu = next(g for g in inventory.gpus if g.index == index)
    card_mb = torch.cuda.get_device_properties(0).total_memory / MIB
    assert gpu.memory_total_mb == pytest.approx(card_mb, rel=0.05)
    assert gpu.name.removeprefix("NVIDIA ").strip() in torch.cuda.get_device_name(0)
    with NvmlSampler() as sampler:
        values = sampler.sample()
    assert 0.0 <= values[f"gpu{index}.util_percent"] <= 100.0
    assert 0.0 < values[f"gpu{index}.mem_used_mb"] <= values[f"gpu{index}.mem_total_mb"]

    gpus = machine_gpus()
    here = next(g for g in gpus if g.index == index)
    assert 0 < here.free_bytes <= gpu.memory_total_mb * MIB
    search = SearchSpec.from_dict(
        {
            "base": spec_of().model_dump(mode="json"),
            "strategy": "grid",
            "params": [{"path": "train.lr", "values": [0.01, 0.02, 0.03, 0.04, 0.05]}],
        }
    )
    trial_bytes = trial_memory_bytes(search)
    assert trial_bytes is not None and 0 < trial_bytes < here.free_bytes
    plan = plan_slots(DEVICE, 1, gpus, trial_bytes)
    assert 2 <= plan.parallel <= 4 and set(plan.slots) == {DEVICE}, plan
    assert plan_for(search).slots == plan.slots


class MeetingTrainer:
    """run_job, after each worker's first trial has met the other's at a barrier.

    Picklable (module level, a spawn-context barrier) so the sweep's worker processes get it;
    a worker that met leaves a mark, so the test knows both held a trial at once.
    """

    def __init__(self, barrier: Any, marks: Path) -> None:
        self.barrier = barrier
        self.marks = marks
        self.met = False

    def __call__(
        self,
        spec: RunSpec,
        db_path: str | Path,
        run_id: int | None = None,
        *,
        emit: Any,
        should_stop: Any,
        sample_system: bool,
    ) -> RunRecord | None:
        if not self.met:
            self.met = True
            try:
                self.barrier.wait(timeout=CHILD_TIMEOUT_S)
            except threading.BrokenBarrierError:
                pass  # trained alone: the test sees one mark missing
            else:
                (self.marks / str(os.getpid())).touch()
        return run_job(
            spec, db_path, run_id, emit=emit, should_stop=should_stop, sample_system=sample_system
        )


def test_two_sweep_trials_train_at_once_on_one_gpu(db_path: Path, tmp_path: Path) -> None:
    from cnn_lab.engine.search import SearchSpec
    from cnn_lab.engine.search.study import run_sweep

    search = SearchSpec.from_dict(
        {
            "name": "two-on-one",
            "base": spec_of({"epochs": 1}, {"limit": 600}).model_dump(mode="json"),
            "strategy": "grid",
            "params": [{"path": "train.lr", "values": [0.01, 0.02]}],
        }
    )
    marks = tmp_path / "marks"
    marks.mkdir()
    barrier = multiprocessing.get_context("spawn").Barrier(2)
    result = run_sweep(
        search, db_path, slots=[DEVICE, DEVICE], trainer=MeetingTrainer(barrier, marks)
    )
    assert (result.trials_done, result.trials_failed) == (2, 0)
    assert len(list(marks.iterdir())) == 2, "the two workers never held a trial at once"
    with RunStore.open(db_path) as store:
        runs = store.list_runs(limit=10)
    assert len(runs) == 2
    assert {r.status for r in runs} == {st.COMPLETED}, [(r.reason, r.hint) for r in runs]
    assert all(r.summary["device"].startswith(device_name()) for r in runs)
    assert len({r.pid for r in runs}) == 2 and os.getpid() not in {r.pid for r in runs}


# --------------------------------------------------------------------------- using a run


@pytest.fixture(scope="module")
def tested_run(tmp_path_factory: pytest.TempPathFactory, shared_cache: Path) -> tuple[Path, int]:
    """A finished fp32 run with a test split and flip TTA (precision alike on both devices)."""
    db = tmp_path_factory.mktemp("evaluated") / "runs.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_LAB_CACHE", str(shared_cache))
        spec = spec_of({"tta_flip": True}, {"test_fraction": 0.2})
        record = run_job(spec, db, sample_system=False)
    assert record is not None and record.status == st.COMPLETED, record
    return db, record.id


def test_evaluation_on_the_gpu_agrees_with_the_cpu_and_with_training(
    tested_run: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    # cuDNN convolutions use TF32 by default, as training did: that evaluation must repeat the
    # run's own test accuracy. Against the CPU's fp32 the GPU evaluates in full fp32, since
    # TF32's rounding could tip a near-tie or two.
    db, run_id = tested_run

    def evaluate(device: str, tf32: bool = True) -> dict[str, Any]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(torch.backends.cudnn, "allow_tf32", tf32)
            code = main(["evaluate", str(run_id), "--db", str(db), "--device", device, "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return json.loads(captured.out)

    as_trained, exact, cpu = evaluate(DEVICE), evaluate(DEVICE, tf32=False), evaluate("cpu")
    assert as_trained["device"] == exact["device"] == DEVICE and cpu["device"] == "cpu"
    assert as_trained["split"] == cpu["split"] == "test"
    images = as_trained["images"]
    assert images == cpu["images"] == LIMIT // 5
    with RunStore.open(db) as store:
        recorded = store.get_run(run_id).summary["test_accuracy"]
    one_image = 1.0 / images + 1e-9
    assert abs(as_trained["accuracy"] - recorded) <= one_image
    assert abs(exact["accuracy"] - cpu["accuracy"]) <= one_image
    assert exact["loss"] == pytest.approx(cpu["loss"], rel=1e-3)


def test_the_predictor_on_the_gpu_answers_as_on_the_cpu(
    tested_run: tuple[Path, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from cnn_lab.engine.data.prepare import prepare_dataset
    from cnn_lab.engine.evaluation.predict import Predictor

    db, run_id = tested_run
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # fp32 on both devices
    with RunStore.open(db) as store:
        spec = RunSpec.from_json(store.get_run(run_id).spec_json)
        on_device = Predictor.from_run(store, run_id, device=DEVICE)
        on_cpu = Predictor.from_run(store, run_id, device="cpu")
    assert on_device.device.type == ("cuda" if ON_CUDA else "cpu")
    prepared = prepare_dataset(spec.dataset)
    paths = []
    for i in prepared.split(spec.dataset).test[:40]:
        path = tmp_path / f"{i}.png"
        Image.fromarray(prepared.images[i]).save(path)
        paths.append(path)
    here, cpu = on_device.predict(paths, top=3), on_cpu.predict(paths, top=3)
    assert all(len(p.top) == 3 and not p.error for p in here)
    differ = sum(a.top[0][0] != b.top[0][0] for a, b in zip(here, cpu, strict=True))
    assert differ <= 1, differ
    for a, b in zip(here, cpu, strict=True):
        if a.top[0][0] == b.top[0][0]:
            assert a.top[0][1] == pytest.approx(b.top[0][1], abs=1e-3)


# --------------------------------------------------------------------------- tuners


def test_the_batch_size_and_lr_finders_measure_real_steps_on_the_device() -> None:
    from cnn_lab.engine.tune.batch_size import find_max_batch
    from cnn_lab.engine.tune.lr_finder import lr_range_test
    from cnn_lab.engine.tune.probe import prepare

    spec = spec_of({"batch_size": 32})
    prepared = prepare(spec.dataset)
    everything = find_max_batch(spec, limit=256, method="probe", prepared=prepared)
    assert everything.method == "probe"
    assert everything.max_batch == 256, everything.message
    assert everything.probes and all(p.ok for p in everything.probes)
    if ON_CUDA:  # the allocator's own counters: exact, so a budget bounds the answer
        # The first search's peaks include one-off allocations (cuDNN's autotuning workspaces:
        # 420 MB at 256 against 179 MB on the next search, seen on an H200), so the budget is
        # set from a second search's steady peak.
        steady = find_max_batch(spec, limit=256, method="probe", prepared=prepared)
        peak = steady.probes[-1].peak_bytes
        assert steady.probes[-1].batch == 256 and peak is not None and peak > 0
        budget = peak // 2
        bounded = find_max_batch(
            spec, limit=256, method="probe", memory_budget_bytes=budget, prepared=prepared
        )
        assert bounded.max_batch is not None and bounded.max_batch < 256, bounded.message
        fitting = [p for p in bounded.probes if p.ok]
        assert fitting and all(p.peak_bytes is not None and p.peak_bytes <= budget for p in fitting)
        assert any(not p.ok for p in bounded.probes)
        assert bounded.max_batch >= max(p.batch for p in fitting) // 8 * 8

    rates = lr_range_test(spec, start_lr=1e-5, end_lr=10.0, steps=40, prepared=prepared)
    assert len(rates.lrs) >= 10, rates.message
    assert list(rates.lrs) == sorted(rates.lrs)
    assert all(math.isfinite(v) for v in rates.losses)


# ------------------------------------------------------------ the hot path on the device


def test_deterministic_training_resumes_bit_exact_on_the_device(tmp_path: Path) -> None:
    """Stopped after 7 steps and resumed, a deterministic run ends with the very weights of
    an uninterrupted one (dropout and augmentation draw on the device's RNG; cuDNN's
    algorithms are the deterministic ones)."""
    from cnn_lab.engine.train import checkpoint as ck
    from cnn_lab.engine.train.loop import train_events

    spec = RunSpec.from_dict(
        {
            "dataset": {
                "source": "sample:shapes",
                "limit": 400,
                "image_size": 16,
                "augment": [{"name": "hflip"}, {"name": "translate"}],
            },
            "architecture": {"preset": "small_cnn", "width": 0.5, "dropout": 0.2},
            "train": {"epochs": 2, "batch_size": 32, "device": DEVICE, "deterministic": True},
        }
    )

    def train(folder: Path, stop_after: int | None = None, resume: bool = False) -> str:
        calls = {"n": 0}

        def should_stop() -> bool:
            calls["n"] += 1
            return stop_after is not None and calls["n"] > stop_after

        events = list(
            train_events(spec, checkpoint_dir=folder, resume=resume, should_stop=should_stop)
        )
        return events[-1].status

    whole, parted = tmp_path / "whole", tmp_path / "parted"
    assert train(whole) == st.COMPLETED
    # The data preparation polls should_stop once, then the loop after each step.
    assert train(parted, stop_after=1 + 7) == st.STOPPED
    assert train(parted, resume=True) == st.COMPLETED
    a = ck.load_checkpoint(ck.checkpoint_path(whole, ck.LAST)).model
    b = ck.load_checkpoint(ck.checkpoint_path(parted, ck.LAST)).model
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_losses_stay_on_the_device_between_logging_intervals() -> None:
    """On the device the loop reads losses every 32 steps, in bursts, and every step still
    gets its StepEnd in order; the run's result is the same as with a read every step."""
    spec = spec_of({"epochs": 3, "max_steps": 40})  # 15 steps an epoch
    bursts = [e.step for e in train_events_of(spec) if isinstance(e, StepEnd)]
    every_step = [e.step for e in train_events_of(spec, log_every=1) if isinstance(e, StepEnd)]
    assert bursts == every_step == list(range(1, 41))


def train_events_of(spec: RunSpec, **options: Any) -> list[Any]:
    from cnn_lab.engine.train.loop import train_events

    return list(train_events(spec, **options))
