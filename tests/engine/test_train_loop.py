"""The training loop as a generator of events: order, learning, stopping, failing."""

from __future__ import annotations

import math

import pytest

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape, register_preset
from cnn_lab.engine.specs import ArchitectureSpec, RunSpec
from cnn_lab.engine.store import status as st
from cnn_lab.engine.train.events import EpochEnd, RunFinished, RunStarted, StepEnd
from cnn_lab.engine.train.loop import MAX_BAD_STEPS, train_events


def quick_spec(**train: object) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 1500},
            "train": {"epochs": 2, "batch_size": 32, "device": "cpu", **train},
        }
    )


@register_preset("test_nan_net", "Produces NaN logits (for the failure test)")
def _nan_net(spec: ArchitectureSpec, shape: InputShape):  # type: ignore[no-untyped-def]
    from torch import nn

    class NanNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(shape.channels * shape.height * shape.width, shape.classes)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.linear(x.flatten(1)) * float("nan")

    return NanNet()


def test_events_come_in_order_and_the_model_learns() -> None:
    events = list(train_events(quick_spec(epochs=3)))
    assert isinstance(events[0], RunStarted)
    assert isinstance(events[-1], RunFinished)
    started, finished = events[0], events[-1]
    steps = [e for e in events if isinstance(e, StepEnd)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert len(steps) == started.total_steps == 3 * started.steps_per_epoch
    assert [e.step for e in steps] == list(range(1, len(steps) + 1))
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert steps[-1].progress == pytest.approx(1.0)
    assert finished.status == st.COMPLETED
    assert started.train_images + started.val_images == 1500
    # Learning, not noise: the loss falls and accuracy beats chance (10 classes).
    assert epochs[-1].train_loss < epochs[0].train_loss
    assert finished.summary["best_val_accuracy"] > 0.3
    assert finished.summary["train_images_per_s"] > 0
    assert all(math.isfinite(e.loss) for e in steps)


def test_same_seed_same_losses() -> None:
    def losses() -> list[float]:
        spec = quick_spec(epochs=1, max_steps=5)
        return [e.loss for e in train_events(spec) if isinstance(e, StepEnd)]

    assert losses() == losses()


def test_stop_takes_one_step() -> None:
    seen: list[StepEnd] = []
    events = train_events(quick_spec(epochs=5), should_stop=lambda: len(seen) >= 3)
    for event in events:
        if isinstance(event, StepEnd):
            seen.append(event)
        last = event
    assert isinstance(last, RunFinished)
    assert last.status == st.STOPPED
    assert len(seen) == 3
    assert "Stopped by request" in (last.reason or "")


def test_non_finite_loss_fails_the_run_with_a_hint() -> None:
    spec = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 200},
            "architecture": {"preset": "test_nan_net"},
            "train": {"epochs": 3, "batch_size": 16, "device": "cpu"},
        }
    )
    events = list(train_events(spec))
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.status == st.FAILED
    assert "nan" in (finished.reason or "").lower()
    assert "learning rate" in (finished.hint or "")
    assert sum(isinstance(e, StepEnd) for e in events) == MAX_BAD_STEPS


def test_unknown_preset_and_device_are_sentences() -> None:
    with pytest.raises(UserError, match="no model preset called 'nope'"):
        list(
            train_events(
                RunSpec.from_dict({"architecture": {"preset": "nope"}, "dataset": {"limit": 100}})
            )
        )
    with pytest.raises(UserError, match="no CUDA GPU"):
        list(train_events(quick_spec(device="cuda:0")))
