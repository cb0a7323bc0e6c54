"""An exponential moving average of the weights, evaluated in place of the raw weights.

The average of the last few hundred steps' weights sits nearer the middle of the minimum the
optimizer is bouncing around in, so it usually validates a little better than the weights of
the last step, at the cost of one more copy of the model and one fused ``lerp`` per step.

The averaging is torch's own (``AveragedModel`` with ``get_ema_multi_avg_fn``), not ours:

* The first ``update()`` copies the model instead of averaging: the weights the average was
  made from (usually the random initial ones) never enter it. After that each update is
  ``ema = decay·ema + (1 − decay)·weights``.
* ``use_buffers=True``: BatchNorm's running mean and variance are averaged the same way as the
  weights, so the averaged model's normalisation matches its averaged weights (copying the
  live model's statistics would pair them with weights they were not measured for). The
  integer ``num_batches_tracked`` goes through the same formula and is truncated back to an
  integer, so it lags the model's by a step or so; it only matters for BatchNorm with
  ``momentum=None`` (a cumulative average), which our layers do not use.

Build it from the plain module, not a ``torch.compile`` or DDP wrapper (pass ``.module`` /
``._orig_mod``), so the state's keys are the model's own.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class WeightEMA:
    """The EMA of ``model``'s parameters and buffers; ``update()`` after each optimizer step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be between 0 and 1, not {decay}")
        self.decay = decay
        self._model = model
        self._averaged = AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True
        )
        self._averaged.eval()  # only ever evaluated; train() would update its BN statistics

        self._updates = 0
        self._average = get_ema_multi_avg_fn(decay)

    @property
    def module(self) -> nn.Module:
        """The averaged model, a separate copy of the network, for evaluation."""
        return self._averaged.module

    @property
    def updates(self) -> int:
        """How many updates went into the average (0: still the weights it was built from)."""
        return self._updates

    @torch.no_grad()
    def update(self) -> None:
        """Fold the model's current weights and buffers into the average.

        ``AveragedModel.update_parameters`` does the same but reads its update count from a
        tensor twice and copies it to the GPU each call: two host syncs per step on a GPU.
        The count is kept on the host here, and torch's EMA function does the averaging,
        grouped by dtype as its foreach kernels need (floats lerp, integers go one by one).
        """
        averaged = self._averaged.module
        pairs = zip(
            itertools.chain(averaged.parameters(), averaged.buffers()),
            itertools.chain(self._model.parameters(), self._model.buffers()),
            strict=True,
        )
        groups: dict[tuple[torch.device, torch.dtype], tuple[list[Tensor], list[Tensor]]] = {}
        for mine, theirs in pairs:
            ema, live = groups.setdefault((mine.device, mine.dtype), ([], []))
            ema.append(mine.detach())
            live.append(theirs.detach())
        for ema, live in groups.values():
            if self._updates == 0:
                torch._foreach_copy_(ema, live)
            else:
                self._average(ema, live, None)
        self._averaged.n_averaged += 1  # a CPU tensor: kept for the checkpoint's format
        self._updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat name → tensor, ready for safetensors: detached and contiguous.

        Contiguous because safetensors refuses strided tensors, and a channels-last model's
        convolution kernels are strided. Tensors that already are contiguous are the live ones,
        as with any torch ``state_dict``: save them before the next ``update()``.
        """
        return {
            name: tensor.detach().contiguous()
            for name, tensor in self._averaged.state_dict().items()
        }

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore an average saved by ``state_dict`` (same network; any memory format)."""
        self._averaged.load_state_dict(dict(state))
        self._updates = int(self._averaged.n_averaged.item())
