"""Trials at once: the slot plan (GPUs, memory packing, the CPU) and the workers that use it.

The planning rules are pure and checked with invented GPUs; ``plan_for`` reads the machine
through a fake NVML. The parallel tests start real worker processes ("spawn") on CPU slots
with a planted trainer (the barrier of test_sweep_workers.py makes both workers hold a trial
at once), and one CLI test trains for real on two CPU slots.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from cnn_lab.engine.cli.main import main
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.search import SearchSpec
from cnn_lab.engine.search.parallel import cpu_threads
from cnn_lab.engine.search.slots import (
    GpuMemory,
    largest_point,
    parse_slots,
    per_gpu,
    plan_for,
    plan_slots,
)
from cnn_lab.engine.search.storage import default_storage_path, open_storage
from cnn_lab.engine.search.study import SWEEP_KIND, run_sweep
from cnn_lab.engine.store import RunRecord, RunStore
from cnn_lab.engine.store import status as st
from tests.engine.test_search import BASE, all_runs
from tests.engine.test_sweep_workers import GRID, BarrierTrainer
from tests.fake_nvml import FakeGpu, install_fake_nvml
from tests.waiting import wait_until

GIB = 2**30
TWO_GPUS = [GpuMemory(0, "H100", 24 * GIB), GpuMemory(1, "H100", 24 * GIB)]


# --------------------------------------------------------------------------- the plan


def test_each_gpu_takes_as_many_trials_as_the_estimate_fits() -> None:
    # 0.9 × 24 GiB / (2 × 5 GiB) = 2.16 → two trials per GPU.
    plan = plan_slots("auto", 1, TWO_GPUS, 5 * GIB)
    assert plan.slots == ("cuda:0", "cuda:0", "cuda:1", "cuda:1")
    assert plan.describe() == "4 at once: cuda:0 ×2, cuda:1 ×2"
    assert "2 trials at once, 24.0 GiB free, about 5.0 GiB each" in plan.reasons[0]
    # A trial too big for two still gets one per GPU; a tiny one is capped.
    assert plan_slots("cuda", 1, TWO_GPUS, 20 * GIB).slots == ("cuda:0", "cuda:1")
    assert per_gpu(24 * GIB, 10 * 2**20) == 4
    assert per_gpu(24 * GIB, None) == 1


def test_the_spec_device_decides_which_devices_take_trials() -> None:
    assert plan_slots("cuda:1", 1, TWO_GPUS, 5 * GIB).slots == ("cuda:1", "cuda:1")
    assert plan_slots("cpu", 1, TWO_GPUS, 5 * GIB).slots == ("cpu",)
    assert plan_slots("auto", 1, TWO_GPUS, 20 * GIB, cpu=True).slots == ("cuda:0", "cuda:1", "cpu")
    # Data-parallel trials take several GPUs each, so they go one at a time.
    ddp = plan_slots("cuda", 2, TWO_GPUS, 1 * GIB)
    assert ddp.slots == ("cuda",) and "one at a time" in ddp.reasons[0]
    # Without a GPU the plan is the spec's own device, one trial at a time.
    alone = plan_slots("auto", 1, [], None, cpu=True)
    assert alone.slots == ("auto",)
    assert alone.describe() == "one at a time (no NVIDIA GPU to spread trials over)"
    assert plan_slots("cpu", 1, [], None).describe() == "one at a time on cpu"
    # The app's job queue leaves out GPUs busy with jobs, unless that leaves none.
    assert plan_slots("auto", 1, TWO_GPUS, 20 * GIB, allowed=["cuda:1"]).slots == ("cuda:1",)
    busy = plan_slots("auto", 1, TWO_GPUS, 20 * GIB, cpu=True, allowed=[])
    assert busy.slots == ("cuda:0", "cuda:1") and "share them" in busy.reasons[-1]


def test_the_estimate_is_taken_at_the_largest_point_of_the_search() -> None:
    search = SearchSpec.from_dict(
        {
            "base": BASE,
            "strategy": "tpe",
            "trials": 4,
            "params": [
                {"path": "train.batch_size", "values": [16, 128, 64]},
                {"path": "architecture.width", "range": {"low": 0.5, "high": 2.0}},
                {"path": "train.lr", "values": [0.5, 0.1]},
            ],
        }
    )
    spec = largest_point(search)
    assert spec.train.batch_size == 128 and spec.architecture.width == 2.0
    assert spec.train.lr == search.base.train.lr  # not memory: left as the base has it


def test_plan_for_reads_the_gpus_and_their_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_nvml(monkeypatch, [FakeGpu("NVIDIA A100"), FakeGpu("NVIDIA A100")])
    cuda = {**BASE, "train": {**BASE["train"], "device": "auto"}}
    search = SearchSpec.from_dict({"base": cuda, "params": GRID, "strategy": "grid"})
    plan = plan_for(search, cpu=True)
    # small_cnn on 32 px images is tiny: the cap of four per GPU holds, and the CPU joins.
    assert plan.slots == ("cuda:0",) * 4 + ("cuda:1",) * 4 + ("cpu",)
    assert "(A100)" in plan.reasons[0] and "6.0 GiB free" in plan.reasons[0]


def test_slot_lists_are_checked_and_cpu_threads_shared() -> None:
    assert parse_slots(" cuda:0, cuda:0 ,CPU") == ("cuda:0", "cuda:0", "cpu")
    with pytest.raises(ValueError, match="gpu3 is not a slot"):
        parse_slots("cpu,gpu3")
    cores = os.cpu_count() or 1
    assert cpu_threads(["cpu", "cpu"]) == max(1, cores // 2)
    assert cpu_threads(["cuda:0", "cpu"]) == max(1, cores - 1)
    assert cpu_threads(["cuda:0"]) == 0


# --------------------------------------------------------------------------- the workers


def grid_search(name: str) -> SearchSpec:
    return SearchSpec.from_dict({"base": BASE, "params": GRID, "strategy": "grid", "name": name})


def test_two_slots_train_a_grid_at_once_without_repeating_a_point(
    db_path: Path, tmp_path: Path
) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    seen: list[Any] = []
    result = run_sweep(
        grid_search("two-slots"),
        db_path,
        slots=["cpu", "cpu"],
        trainer=BarrierTrainer(barrier, workers=2),
        progress=seen.append,
    )
    assert result.trials_done == 6 and len(seen) == 6
    points = {(o.params["train.lr"], o.params["train.optimizer"]) for o in seen}
    assert len(points) == 6
    study = optuna.load_study(study_name="two-slots", storage=open_storage(None, db_path))
    workers = {t.user_attrs["worker"]["pid"] for t in study.get_trials()}
    assert len(workers) == 2 and os.getpid() not in workers
    assert {t.user_attrs["slot"] for t in study.get_trials()} == {"cpu"}
    # Every trial is a run of the sweep's experiment, trained on its slot's device.
    runs = all_runs(db_path)
    assert len(runs) == 6 and len({r.experiment_id for r in runs}) == 1
    with RunStore.open(db_path) as store:
        experiment = store.sqlite_db["experiments"].get(runs[0].experiment_id)
        assert (experiment["kind"], experiment["name"]) == (SWEEP_KIND, "two-slots")
        assert sorted(store.experiment_runs(runs[0].experiment_id)) == sorted(r.id for r in runs)


def test_parallel_random_trials_draw_different_points(db_path: Path, tmp_path: Path) -> None:
    # Workers sharing one sampler seed would draw the same first points twice.
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    search = SearchSpec.from_dict(
        {
            "base": BASE,
            "name": "random-two",
            "strategy": "random",
            "trials": 4,
            "params": [{"path": "train.lr", "range": {"low": 1e-4, "high": 1e-1, "log": True}}],
        }
    )
    result = run_sweep(
        search, db_path, slots=["cpu", "cpu"], trainer=BarrierTrainer(barrier, workers=2)
    )
    assert result.trials_done == 4
    assert len({t.params["train.lr"] for t in result.trials}) == 4


def test_a_slot_the_machine_lacks_is_a_sentence_and_the_others_work(
    db_path: Path, tmp_path: Path
) -> None:
    if _has_cuda():
        pytest.skip("this machine has CUDA, so cuda:63 is the only impossible slot left")
    result = run_sweep(
        grid_search("one-bad-slot"),
        db_path,
        slots=["cpu", "cuda:63"],
        trainer=BarrierTrainer(tmp_path, workers=0),
    )
    assert result.trials_done == 6 and result.trials_failed == 0
    with pytest.raises(UserError, match=r"The trials on cuda:.* stopped: The run asks for cuda"):
        run_sweep(
            grid_search("all-bad"),
            db_path,
            slots=["cuda:62", "cuda:63"],
            trainer=BarrierTrainer(tmp_path, workers=0),
        )
    assert (
        optuna.load_study(study_name="all-bad", storage=open_storage(None, db_path)).get_trials(
            states=(optuna.trial.TrialState.COMPLETE,)
        )
        == []
    )


class WaitingTrainer:
    """Holds its trial until the sweep is stopped (or its coordinator dies); picklable."""

    def __call__(
        self,
        spec: Any,
        db_path: Any,
        run_id: Any = None,
        *,
        emit: Any,
        should_stop: Any,
        sample_system: bool,
    ) -> RunRecord:
        while not should_stop():
            time.sleep(0.05)  # a stand-in for training steps, each checking Stop
        with RunStore.open(db_path) as store:
            store.mark_running(run_id, pid=os.getpid(), device=spec.train.device)
            store.finish_run(run_id, st.STOPPED)
            return store.get_run(run_id)


def _coordinator(db_path: str) -> None:
    run_sweep(grid_search("killed"), db_path, slots=["cpu", "cpu"], trainer=WaitingTrainer())


def test_killing_the_coordinator_stops_its_workers_and_the_sweep_resumes(
    db_path: Path, tmp_path: Path
) -> None:
    context = multiprocessing.get_context("spawn")
    coordinator = context.Process(target=_coordinator, args=(str(db_path),))
    coordinator.start()
    storage = open_storage(None, db_path)

    def running() -> list[Any]:
        if not default_storage_path(db_path).exists():
            return []
        try:
            study = optuna.load_study(study_name="killed", storage=storage)
        except KeyError:  # the journal exists a moment before the study is in it
            return []
        return study.get_trials(states=(optuna.trial.TrialState.RUNNING,))

    wait_until(lambda: len(running()) == 2, timeout=120, poll=0.2)
    pids = [t.user_attrs["worker"]["pid"] for t in running()]
    os.kill(coordinator.pid, signal.SIGKILL)  # type: ignore[arg-type]
    coordinator.join()
    wait_until(lambda: not any(_alive(pid) for pid in pids), timeout=60, poll=0.1)

    resumed = run_sweep(grid_search("killed"), db_path, trainer=BarrierTrainer(tmp_path, workers=0))
    assert resumed.trials_done == 6
    study = optuna.load_study(study_name="killed", storage=storage)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len({json.dumps(t.params, sort_keys=True) for t in done}) == 6


def test_cli_sweep_trains_on_two_cpu_slots_for_real(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "search.json"
    small = {**BASE, "dataset": {"source": "sample:shapes", "limit": 120}}
    path.write_text(
        json.dumps({"name": "cli-slots", "base": small, "strategy": "grid", "params": GRID[:1]})
    )
    code = main(["sweep", str(path), "--db", str(db_path), "--slots", "cpu,cpu", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Trials train 2 at once: cpu, cpu" in captured.err
    result = json.loads(captured.out)
    assert result["trials_done"] == 3
    assert {r.status for r in all_runs(db_path)} == {st.COMPLETED}
    assert main(["sweep", str(path), "--db", str(db_path), "--slots", "gpu"]) == 2
    assert "--slots: gpu is not a slot" in capsys.readouterr().err


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
