"""CPU, memory, disk and process readings (psutil), plus the GPU readings when there is a GPU.

The question these samples answer is "what is the bottleneck of this run?": a GPU at 40 %
next to a CPU at 100 % points at the input pipeline, a climbing RSS at a leak, disk reads at
a dataset that does not fit the page cache. So the process numbers include the children
(DataLoader workers do the decoding), and every rate is measured between two samples.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from cnn_lab.engine.monitor.nvml import NvmlSampler

log = logging.getLogger(__name__)

_MIB = 1024 * 1024

SampleCallback = Callable[[float, dict[str, float]], None]


def _busy_and_total(times: Any) -> tuple[float, float]:
    """CPU seconds spent busy and in total; iowait counts as idle, guest time is in user."""
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _percent(before: list[Any], after: list[Any]) -> float:
    """Busy share of the CPU time that passed between two readings of the same cores."""
    busy0, total0 = map(sum, zip(*map(_busy_and_total, before), strict=True))
    busy1, total1 = map(sum, zip(*map(_busy_and_total, after), strict=True))
    if total1 <= total0:
        return 0.0
    return min(100.0, max(0.0, 100.0 * (busy1 - busy0) / (total1 - total0)))


class SystemSampler:
    """Readings of the machine and of one process tree, as a flat ``{key: value}`` dict.

    CPU percentages are computed from this sampler's own previous sample (primed here), not
    from psutil's module-wide state, so two samplers in one process do not disturb each
    other. ``proc.cpu_percent`` is in percent of one core, like ``top``, so it may exceed
    100. Sizes are MiB.
    """

    def __init__(self, pid: int | None = None, *, gpu: bool = True) -> None:
        self._cpu_times = psutil.cpu_times(percpu=True)
        self._disk = psutil.disk_io_counters()
        self._disk_time = time.monotonic()
        self._children: dict[int, psutil.Process] = {}
        try:
            self._process: psutil.Process | None = psutil.Process(pid or os.getpid())
            self._process.cpu_percent(None)  # the first call returns 0; start the clock now
        except psutil.Error:
            self._process = None
        self._nvml = NvmlSampler() if gpu else None

    def sample(self) -> dict[str, float]:
        """Every reading available now; a vanished process yields no ``proc.*`` keys."""
        values = self._cpu()
        memory = psutil.virtual_memory()
        values["ram.used_mb"] = (memory.total - memory.available) / _MIB
        values["ram.percent"] = float(memory.percent)
        values.update(self._disk_rates())
        values.update(self._process_tree())
        if self._nvml is not None:
            values.update(self._nvml.sample())
        return values

    def _cpu(self) -> dict[str, float]:
        now = psutil.cpu_times(percpu=True)
        before, self._cpu_times = self._cpu_times, now
        if len(before) != len(now):  # a core went on- or offline: restart the measurement
            return {}
        pairs = list(zip(before, now, strict=True))
        values = {f"cpu.core{i}.percent": _percent([b], [a]) for i, (b, a) in enumerate(pairs)}
        values["cpu.percent"] = _percent(before, now)
        return values

    def _disk_rates(self) -> dict[str, float]:
        now, now_time = psutil.disk_io_counters(), time.monotonic()
        before, before_time = self._disk, self._disk_time
        self._disk, self._disk_time = now, now_time
        elapsed = now_time - before_time
        if now is None or before is None or elapsed <= 0:
            return {}  # no disks visible (some containers), or two samples at once
        return {
            "disk.read_mb_s": max(0, now.read_bytes - before.read_bytes) / _MIB / elapsed,
            "disk.write_mb_s": max(0, now.write_bytes - before.write_bytes) / _MIB / elapsed,
        }

    def _process_tree(self) -> dict[str, float]:
        if self._process is None:
            return {}
        try:
            rss = self._process.memory_info().rss
            cpu = self._process.cpu_percent(None)
            children = self._process.children(recursive=True)
        except psutil.Error:
            self._process = None  # gone (or no longer ours to read): stop asking
            return {}
        # keep each child's Process object, so its cpu_percent measures since the last sample
        self._children = {c.pid: self._children.get(c.pid, c) for c in children}
        for child in self._children.values():
            try:
                rss += child.memory_info().rss
                cpu += child.cpu_percent(None)
            except psutil.Error:
                continue  # a worker that exited between listing and reading
        return {"proc.rss_mb": rss / _MIB, "proc.cpu_percent": cpu}

    def close(self) -> None:
        """Release NVML."""
        if self._nvml is not None:
            self._nvml.close()
            self._nvml = None


class BackgroundSampler:
    """Runs a ``SystemSampler`` on a daemon thread and hands each sample to ``callback``.

    The callback runs on the sampler thread with ``time.time()`` (wall clock, comparable
    with the run store's times) and the values. A callback or sampler error is logged and
    sampling goes on: losing the monitor must never cost a training run.
    """

    def __init__(
        self,
        callback: SampleCallback,
        *,
        hz: float = 2.0,
        sampler: SystemSampler | None = None,
    ) -> None:
        if hz <= 0:
            raise ValueError(f"hz must be positive, got {hz}")
        self._callback = callback
        self._period = 1.0 / hz
        self._sampler = sampler
        self._owns_sampler = sampler is None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start sampling; does nothing if already running."""
        if self.running:
            return
        if self._sampler is None:
            self._sampler = SystemSampler()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cnn-lab-monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the thread to finish and wait for it up to ``timeout`` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # stuck in a callback; it is a daemon, so let it be
                log.warning("monitor thread did not stop within %.1f s", timeout)
                return
            self._thread = None
        if self._owns_sampler and self._sampler is not None:
            self._sampler.close()
            self._sampler = None

    def _run(self) -> None:
        sampler = self._sampler
        assert sampler is not None
        next_due = time.monotonic()
        while not self._stop.is_set():
            try:
                values = sampler.sample()
                self._callback(time.time(), values)
            except Exception:
                log.exception("system sample or its callback failed; sampling continues")
            # a fixed-rate schedule; after a stall, skip the missed ticks instead of bursting
            next_due += self._period
            now = time.monotonic()
            if next_due < now:
                next_due = now + self._period
            self._stop.wait(next_due - now)

    def __enter__(self) -> BackgroundSampler:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
