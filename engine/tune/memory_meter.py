"""How much memory one training step takes at its peak, on a GPU or on the CPU.

The batch-size finder asks this of every probe. On a GPU the caching allocator counts
exactly; on the CPU only the process's resident memory says anything, and it needs care
(see ``RssMeter``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch


class Meter(Protocol):
    """What a probe holds before a step, and how much more the step takes at its peak."""

    def held(self, batch_bytes: int) -> int: ...
    def begin(self) -> None: ...
    def end(self) -> int: ...


class CudaMeter:
    """The caching allocator's own counters: exact, and resettable per step."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.baseline = self._allocated()  # before the probe: not the probe's
        self._start = 0

    def _allocated(self) -> int:
        return int(torch.cuda.memory_allocated(self.device))

    def held(self, batch_bytes: int) -> int:
        """Model, optimizer state, resident data and the batch: all the probe allocated."""
        return self._allocated() - self.baseline

    def begin(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)
        self._start = self._allocated()

    def end(self) -> int:
        return int(torch.cuda.max_memory_allocated(self.device)) - self._start


class RssMeter:
    """Growth of the process's resident memory over one step, on the CPU.

    Resident memory also holds code pages, thread stacks and whatever the C allocator keeps
    after a free, none of which a batch size decides. So the step's own cost is its peak
    growth, measured after a warm-up step (code loaded, optimizer state built) and after
    handing freed heap back to the system (glibc's ``malloc_trim``), so a step cannot hide
    by reusing memory an earlier, larger step left behind. What the probe holds before the
    step (weights, optimizer state) comes from the estimate, passed in as ``resident``.

    The peak: on Linux, writing 5 to /proc/self/clear_refs resets the kernel's high-water
    mark (VmHWM), which then records the step's exact peak. Elsewhere a thread samples the
    resident size every millisecond, which can miss a spike shorter than that.
    """

    _STATUS = Path("/proc/self/status")
    _CLEAR = Path("/proc/self/clear_refs")

    def __init__(self, resident: int) -> None:
        import psutil

        self.resident = resident
        self._process = psutil.Process()
        self._trim = _malloc_trim()
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        self._start = 0
        self._peak = 0

    def _rss(self) -> int:
        return int(self._process.memory_info().rss)

    def held(self, batch_bytes: int) -> int:
        return self.resident + batch_bytes

    def begin(self) -> None:
        if self._trim is not None:
            self._trim(0)
        self._start = self._rss()
        try:
            self._CLEAR.write_text("5")
        except OSError:
            self._start_sampler()

    def end(self) -> int:
        if self._sampler is None:
            return max(self._high_water(), self._rss()) - self._start
        self._stop.set()
        self._sampler.join()
        self._sampler = None
        return max(self._peak, self._rss()) - self._start

    def _high_water(self) -> int:
        for line in self._STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def _start_sampler(self) -> None:
        self._stop.clear()
        self._peak = self._rss()

        def sample() -> None:
            while not self._stop.wait(0.001):
                self._peak = max(self._peak, self._rss())

        self._sampler = threading.Thread(target=sample, name="cnn-lab-rss", daemon=True)
        self._sampler.start()


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (macOS, Windows, musl)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def meter_for(device: torch.device, resident: int) -> Meter:
    """The allocator's counters on a GPU; the process's resident memory elsewhere.

    ``resident`` is what the probe holds before a step on the CPU (weights and optimizer
    state, from the estimate), which resident-set growth cannot see.
    """
    if device.type == "cuda":
        return CudaMeter(device)
    return RssMeter(resident=resident)
