"""The fine-tuning recipe's numbers and words, without torch: the rates of the layer groups, the
phase of an epoch, and the lines that describe the phases.

The loop (engine/train/fine_tune.py), its events and summary, the LR finder and the
Hyperparameters form all say the phases with these, so the window shows exactly what a run
does. No torch here: the form imports it before torch is loaded.
"""

from __future__ import annotations

from cnn_lab.engine.specs.train import TrainSpec

HEAD_PHASE, ALL_PHASE = 1, 2
"""Phase 1 trains the head alone; phase 2 every layer with discriminative rates."""


def group_rates(lr: float, ratio: float, groups: int) -> list[float]:
    """The rate of each layer group, earliest first: geometric from ``lr / ratio`` to ``lr``.

    Geometric, as fastai's ``slice(lr / ratio, lr)`` spreads them: each group's rate is the
    same multiple of the one before, so the ratio, not the number of groups, sets how much
    slower the earliest layers learn.

    >>> [f"{r:g}" for r in group_rates(1e-3, 100, 3)]
    ['1e-05', '0.0001', '0.001']
    """
    if groups < 2:
        return [lr] * groups
    return [lr / ratio ** ((groups - 1 - i) / (groups - 1)) for i in range(groups)]


def phase_of(epoch: int, t: TrainSpec) -> int:
    """The phase that trains 1-based ``epoch``."""
    return HEAD_PHASE if epoch <= t.fine_tune.head_epochs else ALL_PHASE


def phase_text(phase: int, t: TrainSpec) -> str:
    """What a phase trains, for epoch events and the summary ("all layers, rates 1e-05 … 0.001")."""
    if phase == HEAD_PHASE:
        return f"head only, rate {t.lr:.3g}"
    rates = group_rates(t.lr, t.fine_tune.lr_ratio, t.fine_tune.groups)
    return f"all layers, rates {rates[0]:.3g} … {rates[-1]:.3g}"


def _epochs(first: int, last: int) -> str:
    return f"Epoch {first}" if first == last else f"Epochs {first}–{last}"


def phase_lines(t: TrainSpec) -> list[str]:
    """The two phases in words: ["Epoch 1: head only, rate 0.001", "Epochs 2–10: all layers, …"]."""
    head = t.fine_tune.head_epochs
    return [
        f"{_epochs(1, head)}: {phase_text(HEAD_PHASE, t)}",
        f"{_epochs(head + 1, t.epochs)}: {phase_text(ALL_PHASE, t)}",
    ]
