"""Image arrays to normalised tensors on the training device, and batches from them.

The whole (small) dataset is moved to the device once as float tensors, so a step costs an
index and nothing else: no DataLoader workers, no per-image Python. The dataset issue adds
the memory-mapped uint8 cache and on-device augmentation for data that does not fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from cnn_lab.engine.data.imageset import ImageSet


@dataclass(frozen=True)
class DeviceSplit:
    images: torch.Tensor  # float32, N x C x H x W, normalised
    labels: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def channels_last(self) -> DeviceSplit:
        return DeviceSplit(self.images.contiguous(memory_format=torch.channels_last), self.labels)

    def batches(
        self, batch_size: int, *, generator: torch.Generator | None = None, shuffle: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self)
        if shuffle:
            order = torch.randperm(n, generator=generator).to(self.images.device)
        else:
            order = torch.arange(n, device=self.images.device)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            yield self.images[index], self.labels[index]


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 NHWC images, scaled to 0..1."""
    flat = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    return flat.mean(axis=0), np.maximum(flat.std(axis=0), 1e-6)


def to_device_split(
    images: ImageSet,
    indices: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    device: torch.device,
) -> DeviceSplit:
    x = torch.from_numpy(np.ascontiguousarray(images.images[indices])).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    x = x.sub_(m).div_(s).contiguous()
    y = torch.from_numpy(images.labels[indices].astype(np.int64)).to(device)
    return DeviceSplit(x, y)
