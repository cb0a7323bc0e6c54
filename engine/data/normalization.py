"""Which per-channel mean and std a run's images are normalised with, and why.

``DatasetSpec.normalize == "auto"`` follows the network: published weights that state a mean
and std (ImageNet's, for torchvision's) were trained on images normalised that way, and their
first layer only sees what it learnt on if the new images are normalised the same way.
Otherwise (no published weights, weights that say nothing, or ``normalize == "dataset"``), the
training images' own statistics are used, as before.

A greyscale dataset on RGB weights gets the average of the three means and of the three
stds: its stem was adapted by summing the RGB kernels (engine/models/weights.py), which is
exact for a grey image seen as R=G=B normalised with one mean and std.

The choice is a pure function of the specs and the training images, so training, evaluation
and prediction of one run all make the same one; the run's summary records it ("normalize").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cnn_lab.engine.data.loader import channel_stats
from cnn_lab.engine.specs import DatasetSpec


class WeightsStats(Protocol):
    """What published weights say about normalisation (published_weights.py's ``Expected``)."""

    @property
    def weights(self) -> str: ...

    @property
    def mean(self) -> tuple[float, ...] | None: ...

    @property
    def std(self) -> tuple[float, ...] | None: ...


@dataclass(frozen=True)
class Normalization:
    """The mean and std (0..1 scale, one per channel) images are normalised with."""

    mean: np.ndarray
    std: np.ndarray
    source: str
    """Where they come from, in words: "the IMAGENET1K_V2 weights", "the training images"."""

    def as_dict(self) -> dict[str, object]:
        """For the run's summary: ``{"mean": [...], "std": [...], "from": "..."}``."""
        return {
            "mean": [round(float(v), 6) for v in self.mean],
            "std": [round(float(v), 6) for v in self.std],
            "from": self.source,
        }


TRAINING_IMAGES = "the training images"


def choose_normalization(
    spec: DatasetSpec,
    weights: WeightsStats | None,
    images: np.ndarray,
    train: np.ndarray,
) -> Normalization:
    """The weights' mean and std under ``normalize == "auto"`` when they state them, else the
    training images' own (``images`` is N×H×W×C uint8, ``train`` the training indices)."""
    channels = int(images.shape[-1])
    if spec.normalize == "auto" and weights is not None:
        stated = _stated(weights, channels)
        if stated is not None:
            mean, std = stated
            return Normalization(mean, std, f"the {weights.weights} weights")
    mean, std = channel_stats(images, train, seed=spec.split_seed)
    return Normalization(mean, std, TRAINING_IMAGES)


def _stated(weights: WeightsStats, channels: int) -> tuple[np.ndarray, np.ndarray] | None:
    if not weights.mean or not weights.std or len(weights.mean) != len(weights.std):
        return None
    mean = np.asarray(weights.mean, dtype=np.float64)
    std = np.asarray(weights.std, dtype=np.float64)
    if len(mean) == channels:
        return mean, std
    if channels == 1:
        return mean.mean(keepdims=True), std.mean(keepdims=True)
    return None  # three stated for a dataset of another count: the images' own are safer
