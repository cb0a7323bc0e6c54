"""Speed and recipe options in a real run: refused where they cannot apply, effective where they
can, and an out-of-memory step that says which batch size fits."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape, register_preset
from cnn_lab.engine.specs import ArchitectureSpec, RunSpec
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train.events import EpochEnd, RunFinished, RunStarted, StepEnd
from cnn_lab.engine.train.loop import train_events


def spec(arch: str = "small_cnn", **train: Any) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 300, "image_size": 16},
            "architecture": {"preset": arch, "width": 0.25} if arch != "custom" else {},
            "train": {"epochs": 1, "batch_size": 32, "device": "cpu", **train},
        }
    )


def events_of(run_spec: RunSpec) -> list[Any]:
    return list(train_events(run_spec))


@pytest.mark.parametrize(
    ("train", "words"),
    [
        ({"precision": "fp16"}, "fp16 mixed precision needs a GPU"),
        ({"cudnn_benchmark": True}, "cudnn.benchmark only applies to NVIDIA GPUs"),
        ({"optimizer": "rmsprop", "fused_optimizer": "fused"}, "no fused kernel for RMSprop"),
        ({"schedule": "onecycle", "warmup_epochs": 0.5}, "has its own warm-up"),
    ],
)
def test_options_the_device_cannot_honour_are_refused(train: dict, words: str) -> None:
    with pytest.raises(UserError, match=words):
        events_of(spec(**train))


def test_bf16_accumulation_clipping_ema_tta_and_smoothing_train_together() -> None:
    events = events_of(
        spec(
            precision="bf16",
            grad_accumulation=2,
            grad_clip=1.0,
            ema_decay=0.9,
            tta_flip=True,
            label_smoothing=0.1,
            optimizer="sgd",
            schedule="step",
            warmup_epochs=0.2,
        )
    )
    started, finished = events[0], events[-1]
    assert isinstance(started, RunStarted) and isinstance(finished, RunFinished)
    assert finished.status == st.COMPLETED, finished.reason
    steps = [e for e in events if isinstance(e, StepEnd)]
    # 240 training images in batches of 32 = 8 batches = 4 optimizer steps of 2 batches.
    assert started.steps_per_epoch == len(steps) == 4
    epoch = next(e for e in events if isinstance(e, EpochEnd))
    assert 0.0 <= epoch.val_accuracy <= 1.0


def test_early_stopping_ends_the_run_with_the_reason() -> None:
    events = events_of(spec(epochs=30, early_stopping=1, min_delta=0.5, lr=1e-5))
    finished = events[-1]
    assert finished.status == st.COMPLETED
    assert "Stopped early after epoch 2" in finished.reason
    assert finished.summary["early_stopped_epoch"] == 2 and finished.summary["epochs"] == 2


_LIMIT = {"batch": 8}


@register_preset("test_memory_hungry", "Runs out of memory above a batch of 8 (for a test)")
def _hungry(spec: ArchitectureSpec, shape: InputShape):  # type: ignore[no-untyped-def]
    from torch import nn

    class Hungry(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(shape.channels * shape.height * shape.width, shape.classes)

        def forward(self, x):  # type: ignore[no-untyped-def]
            if self.training and len(x) > _LIMIT["batch"]:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return self.linear(x.flatten(1))

    return Hungry()


def test_out_of_memory_fails_the_run_and_names_a_batch_size_that_fits() -> None:
    finished = events_of(spec("test_memory_hungry", batch_size=64))[-1]
    assert finished.status == st.FAILED
    assert finished.reason == "The CPU ran out of memory at batch size 64."
    assert finished.hint.startswith("Batch size 8 fits: retry with it")
    assert finished.summary["suggested_batch_size"] == 8


def test_compile_time_is_reported_apart_from_training_time() -> None:
    compiled = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 200, "image_size": 16},
            "architecture": {
                "preset": "custom",
                "layers": [
                    {"kind": "conv2d", "params": {"out_channels": 8}},
                    {"kind": "relu"},
                    {"kind": "global_avg_pool"},
                    {"kind": "linear"},
                ],
            },
            "train": {"epochs": 1, "batch_size": 32, "device": "cpu", "compile": True},
        }
    )
    finished = events_of(compiled)[-1]
    assert finished.status == st.COMPLETED, finished.reason
    summary = finished.summary
    assert summary["compile_s"] > summary["train_time_s"] > 0
