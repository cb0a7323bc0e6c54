"""The speed options of a TrainSpec, checked against the device the run really got.

Each option either applies to the device or is refused with a sentence: fp16 on a CPU, or
cudnn.benchmark without cuDNN, would otherwise be silently ignored and the person would
believe they were measuring something they were not.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs import TrainSpec

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_options(t: TrainSpec, device: torch.device) -> None:
    """Refuse, in a sentence, what this device cannot do."""
    kind = device.type
    if t.precision == "fp16" and kind == "cpu":
        raise UserError(
            "fp16 mixed precision needs a GPU; on the CPU it is slower than fp32 and "
            "PyTorch's CPU autocast does not support it well.",
            hint="Choose bf16 (fast on recent CPUs) or fp32.",
        )
    if t.precision == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError(
            f"{torch.cuda.get_device_name(device)} has no bfloat16 support.",
            hint="Choose fp16 (with its gradient scaler) or fp32.",
        )
    if t.precision == "bf16" and kind == "mps":
        raise UserError("bf16 autocast is not supported on Apple's MPS.", hint="Choose fp16.")
    if t.cudnn_benchmark and kind != "cuda":
        raise UserError(
            f"cudnn.benchmark only applies to NVIDIA GPUs, and this run trains on {kind}.",
            hint="Turn it off (or leave it on automatic).",
        )
    if t.world_size > 1 and kind == "cuda" and t.world_size > torch.cuda.device_count():
        raise UserError(
            f"The run asks for {t.world_size} data-parallel GPUs; this machine has "
            f"{torch.cuda.device_count()}.",
            hint="Lower the number of processes, or run it under torchrun on more machines.",
        )


CUBLAS_WORKSPACE = ":4096:8"
"""cuBLAS's fixed workspace that its deterministic mode needs (NVIDIA's documented value)."""


def configure_backends(t: TrainSpec, device: torch.device) -> None:
    if t.deterministic:
        # Read when cuBLAS creates its handle, which happens at the first matmul of the
        # process: a job's child process configures this before it builds the model.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        # Automatic means on: with fixed image sizes the one-off timing pays for itself.
        torch.backends.cudnn.benchmark = t.cudnn_benchmark is not False


@contextlib.contextmanager
def configured_backends(t: TrainSpec, device: torch.device) -> Iterator[None]:
    """``configure_backends`` for the length of a run; the process-wide switches are put back
    afterwards, so a deterministic run leaves no trace on the next one in the same process."""
    cudnn = torch.backends.cudnn
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        cudnn.deterministic,
        cudnn.benchmark,
    )
    configure_backends(t, device)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        cudnn.deterministic, cudnn.benchmark = saved[2], saved[3]


def nondeterministic_op(exc: BaseException) -> UserError | None:
    """The sentence for an operation that has no deterministic kernel, when that was asked."""
    text = str(exc)
    if not isinstance(exc, RuntimeError) or "does not have a deterministic" not in text:
        return None
    op = text.split(" does not have")[0].strip()
    return UserError(
        f"Deterministic training was asked for, but {op} has no deterministic kernel on "
        "this device.",
        hint="Turn deterministic training off, or replace the layer that uses it.",
    )


@contextlib.contextmanager
def autocast(t: TrainSpec, device: torch.device) -> Iterator[None]:
    """Mixed precision for the forward pass and the loss, or nothing for fp32."""
    if t.precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[t.precision]):
        yield


def make_scaler(t: TrainSpec, device: torch.device) -> torch.amp.GradScaler | None:
    """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
    if t.precision != "fp16":
        return None
    return torch.amp.GradScaler(device.type)


class Compiled:
    """torch.compile, with the time spent compiling kept apart from training time.

    Compilation happens lazily on the first forward with each new input shape (the first
    batch, and again for a smaller last batch), so those steps are mostly compile time: the
    loop reports them as ``compile_s`` and leaves them out of training time and images per
    second, so compiled and eager runs compare fairly.
    """

    def __init__(self, model: nn.Module, enabled: bool) -> None:
        self.enabled = enabled
        self.module: Any = torch.compile(model) if enabled else model
        self.compile_s = 0.0
        self._shapes: set[tuple[int, ...]] = set()

    def was_compiling(self, seconds: float, shape: tuple[int, ...]) -> bool:
        """Whether a step that took ``seconds`` on inputs of ``shape`` was a compile."""
        if not self.enabled or shape in self._shapes:
            return False
        self._shapes.add(shape)
        self.compile_s += seconds
        return True
