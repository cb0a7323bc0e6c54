"""GPU faults that break the process's CUDA context, turned into a sentence a person can act on.

After a device-side assert, an illegal memory access or a failed kernel launch, CUDA refuses
every later call in the process: nothing more can run on that GPU here, not a checkpoint, not
the final weights. So such an error is not an internal error with a traceback: the run fails
with what happened and what to check, the metrics stored so far stay stored (the job's writer
needs no GPU), and because a job trains in its own process the window and every other job keep
working; the next run starts in a new process with a fresh context.

CUDA reports these errors asynchronously (at the next call that synchronises, a ``.item()``
say), so they are recognised wherever they surface in the loop, not only around the step.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.train.memory import is_out_of_memory

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

UNUSABLE = "which leaves this process's CUDA context unusable, so the run stopped"
KEPT = "The metrics stored so far are kept, and a new run starts with a fresh CUDA context."
LOCATE = "To find the operation, train again with CUDA_LAUNCH_BLOCKING=1 set."


@dataclass(frozen=True)
class DeviceFault:
    """One kind of context-breaking CUDA error: the text its message holds, and what to say."""

    marker: str
    """Lower-case text that CUDA's message for this error contains."""
    what: str
    """What happened, as the start of a sentence."""
    check: str
    """What the person should check."""


DEVICE_FAULTS: tuple[DeviceFault, ...] = (
    DeviceFault(
        "device-side assert",
        "A check inside a GPU kernel failed (a device-side assert)",
        "The usual cause is a class label outside 0 to classes-1: check the dataset's labels "
        "against the network's output size (its last layer), or an index out of range in a "
        "custom layer.",
    ),
    DeviceFault(
        "illegal memory access",
        "A GPU kernel read or wrote memory it does not own (an illegal memory access)",
        "This is a bug in a kernel (a custom layer, a compiled model, or the driver): try "
        "without compile and with the driver nvidia-smi reports up to date.",
    ),
    DeviceFault(
        "misaligned address",
        "A GPU kernel used a misaligned address",
        "This is a bug in a kernel: try without compile and without channels-last.",
    ),
    DeviceFault(
        "illegal instruction",
        "A GPU kernel hit an illegal instruction",
        "PyTorch's build may not match this GPU or driver: check that nvidia-smi works and "
        "that PyTorch was installed for this CUDA version.",
    ),
    DeviceFault(
        "launch timed out",
        "A GPU kernel ran too long and the driver ended it",
        "This GPU also drives a display, whose watchdog ends long kernels: lower the batch "
        "size, or train on a GPU without a display attached.",
    ),
    DeviceFault(
        "unspecified launch failure",
        "A GPU kernel failed to run (an unspecified launch failure)",
        "Check the GPU's health (nvidia-smi, the system log for Xid errors) and its driver.",
    ),
)
"""Every CUDA error known to leave the context unusable; others stay internal errors."""


class CudaContextLost(UserError):
    """A CUDA error after which nothing more can run on the GPU in this process."""

    def __init__(self, fault: DeviceFault) -> None:
        super().__init__(f"{fault.what}, {UNUSABLE}.", hint=f"{fault.check} {KEPT} {LOCATE}")
        self.fault = fault


def device_fault(exc: BaseException) -> CudaContextLost | None:
    """The sentence for ``exc`` if it is a context-breaking CUDA error, else None.

    Out of memory is not one of them: the loop handles it where it can still measure which
    batch size fits.
    """
    if not isinstance(exc, RuntimeError) or is_out_of_memory(exc):
        return None
    text = str(exc).lower()
    for fault in DEVICE_FAULTS:
        if fault.marker in text:
            return CudaContextLost(fault)
    return None


def translate_device_faults(
    events: Callable[P, Iterator[T]],
) -> Callable[P, Iterator[T]]:
    """Wrap an event generator so a context-breaking CUDA error leaves it as CudaContextLost.

    The job records a UserError as the run's failure reason and hint, with no traceback in
    front of the person; the original one still goes to the log.
    """

    @functools.wraps(events)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        try:
            yield from events(*args, **kwargs)
        except RuntimeError as exc:
            lost = device_fault(exc)
            if lost is None:
                raise
            log.error("the GPU failed: %s", exc, exc_info=True)
            raise lost from exc

    return wrapper
