"""Checkpoints and resume: exact continuation, NaN and data parallel.

Full disks, pickles and truncated files are fault cases: tests/faults/test_bad_files.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from cnn_lab.engine.jobs.job import run_job
from cnn_lab.engine.models import InputShape, register_preset
from cnn_lab.engine.specs import ArchitectureSpec, RunSpec
from cnn_lab.engine.store import RunStore, run_files_dir
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train import checkpoint as ck
from cnn_lab.engine.train.events import CheckpointSaved, EpochEnd, RunFinished, StepEnd
from cnn_lab.engine.train.loop import train_events
from tests.engine.test_cli import invoke

STEPS_PER_EPOCH = 10  # 400 images, 80% train, batch 32


def spec(**train: Any) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {
                "source": "sample:shapes",
                "limit": 400,
                "image_size": 16,
                "augment": [{"name": "hflip", "strength": 1.0}, {"name": "translate"}],
                "mixup_alpha": 0.2,
            },
            "architecture": {"preset": "small_cnn", "width": 0.25, "dropout": 0.2},
            "train": {
                "epochs": 2,
                "batch_size": 32,
                "device": "cpu",
                "optimizer": "sgd",
                "schedule": "cosine",
                "ema_decay": 0.9,
                "label_smoothing": 0.1,
                "grad_clip": 5.0,
                **train,
            },
        }
    )


def run(
    run_spec: RunSpec, folder: Path, *, stop_after: int | None = None, resume: bool = False
) -> list[Any]:
    steps = 0

    def should_stop() -> bool:
        return stop_after is not None and steps >= stop_after

    events = []
    for event in train_events(
        run_spec, should_stop=should_stop, checkpoint_dir=folder, resume=resume
    ):
        events.append(event)
        if isinstance(event, StepEnd):
            steps += 1
    return events


def last_weights(folder: Path) -> dict[str, torch.Tensor]:
    return ck.load_checkpoint(ck.checkpoint_path(folder, ck.LAST)).model


def test_resuming_after_n_steps_gives_the_weights_of_2n_uninterrupted(tmp_path: Path) -> None:
    s = spec()
    whole = run(s, tmp_path / "whole")
    assert whole[-1].status == st.COMPLETED
    n = STEPS_PER_EPOCH + 3  # stop in the middle of the second epoch
    first = run(s, tmp_path / "split", stop_after=n)
    assert first[-1].status == st.STOPPED
    assert [e.which for e in first if isinstance(e, CheckpointSaved)] == ["best", "last", "last"]
    second = run(s, tmp_path / "split", resume=True)
    assert second[0].start_step == n
    assert second[-1].status == st.COMPLETED
    assert next(e.step for e in second if isinstance(e, StepEnd)) == n + 1
    a, b = last_weights(tmp_path / "whole"), last_weights(tmp_path / "split")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # The losses after the resume are the uninterrupted run's, step for step.
    losses = {e.step: e.loss for e in whole if isinstance(e, StepEnd)}
    for event in second:
        if isinstance(event, StepEnd):
            assert event.loss == pytest.approx(losses[event.step], rel=1e-6)


_CALLS = {"n": 0}


@register_preset("test_diverging_net", "Turns NaN after its first epoch (for the NaN test)")
def _diverging(spec: ArchitectureSpec, shape: InputShape):  # type: ignore[no-untyped-def]
    from torch import nn

    class Diverging(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(shape.channels * shape.height * shape.width, shape.classes)

        def forward(self, x):  # type: ignore[no-untyped-def]
            if self.training and x.device.type != "meta":  # the summary's pass is not a step
                _CALLS["n"] += 1
            out = self.linear(x.flatten(1))
            return out * float("nan") if _CALLS["n"] > STEPS_PER_EPOCH else out

    return Diverging()


def test_a_planted_nan_fails_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    _CALLS["n"] = 0
    s = RunSpec.from_dict(
        {**spec().model_dump(mode="json"), "architecture": {"preset": "test_diverging_net"}}
    )
    events = run(s, tmp_path)
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == st.FAILED
    assert "non-finite" in finished.reason and "last good checkpoint" in finished.hint
    good = ck.load_checkpoint(ck.checkpoint_path(tmp_path, ck.LAST))
    assert good.progress.step == STEPS_PER_EPOCH
    assert all(torch.isfinite(t).all() for t in good.model.values())


def test_resume_from_the_cli_continues_and_extends(db_path: Path) -> None:
    steps = {"n": 0}

    def stop_soon(event: Any) -> None:
        if isinstance(event, StepEnd):
            steps["n"] += 1

    record = run_job(
        spec(epochs=1), db_path, sample_system=False, emit=stop_soon,
        should_stop=lambda: steps["n"] >= 4,
    )  # fmt: skip
    assert record.status == st.STOPPED
    result = invoke(["resume", str(record.id), "--db", str(db_path), "--json"])
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["status"] == st.COMPLETED and data["epochs"] == 1
    result = invoke(["resume", str(record.id), "--epochs", "2", "--db", str(db_path), "--json"])
    assert json.loads(result.out)["epochs"] == 2, result.err
    with RunStore.open(db_path) as store:
        run_record = store.get_run(record.id)
        kinds = {a["kind"] for a in store.artifacts(record.id)}
        steps_logged = [p.step for p in store.metrics(record.id, "train.loss")]
    assert RunSpec.from_json(run_record.spec_json).train.epochs == 2
    assert {"checkpoint.last", "checkpoint.best", "weights"} <= kinds
    assert steps_logged == sorted(set(steps_logged)) == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    assert (run_files_dir(db_path, record.id) / "last.ckpt").is_file()
    refused = invoke(["resume", str(record.id), "--epochs", "1", "--db", str(db_path)])
    assert refused.code == 2 and "must be at least that" in refused.err


def test_data_parallel_with_two_gloo_processes_matches_one_process(db_path: Path) -> None:
    common = {
        "dataset": {"source": "sample:shapes", "limit": 400, "image_size": 16},
        "architecture": {
            "preset": "custom",
            "layers": [
                {"kind": "conv2d", "params": {"out_channels": 8}},
                {"kind": "groupnorm", "params": {"groups": 4}},
                {"kind": "relu"},
                {"kind": "global_avg_pool"},
                {"kind": "linear"},
            ],
        },
        "train": {
            "epochs": 1,
            "batch_size": 32,
            "device": "cpu",
            "optimizer": "sgd",
            "schedule": "constant",
            "lr": 0.1,
            "max_steps": 6,
        },
    }
    single = run_job(RunSpec.from_dict(common), db_path, sample_system=False)
    common["train"]["world_size"] = 2
    parallel = run_job(RunSpec.from_dict(common), db_path, sample_system=False)
    assert single.status == parallel.status == st.COMPLETED, parallel.reason
    a = ck.load_checkpoint(run_files_dir(db_path, single.id) / "last.ckpt").model
    b = ck.load_checkpoint(run_files_dir(db_path, parallel.id) / "last.ckpt").model
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    assert "×2" in parallel.summary["device"]


def test_a_stop_during_validation_resumes_by_validating_that_epoch(tmp_path: Path) -> None:
    s = spec(epochs=2)
    seen = {"last_step_of_epoch_1": False, "calls_after": 0}

    def should_stop() -> bool:
        if not seen["last_step_of_epoch_1"]:
            return False
        seen["calls_after"] += 1
        return seen["calls_after"] > 1  # not the check after the step: the ones in validation

    events = []
    for event in train_events(s, should_stop=should_stop, checkpoint_dir=tmp_path):
        events.append(event)
        if isinstance(event, StepEnd) and event.step == STEPS_PER_EPOCH:
            seen["last_step_of_epoch_1"] = True
    assert events[-1].status == st.STOPPED and "validation" in events[-1].reason
    assert not [e for e in events if isinstance(e, EpochEnd)]
    resumed = run(s, tmp_path, resume=True)
    assert [e.epoch for e in resumed if isinstance(e, EpochEnd)] == [1, 2]
    assert resumed[-1].status == st.COMPLETED
    run(s, tmp_path / "whole")
    a, b = last_weights(tmp_path), last_weights(tmp_path / "whole")
    for key in a:
        assert torch.equal(a[key], b[key]), key
