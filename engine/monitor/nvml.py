"""A thin, defensive wrapper of NVML (nvidia-ml-py) for GPU inventory and live samples.

Every call is guarded: NVML is absent on machines without the NVIDIA driver, some queries
are unsupported on some boards (power on many laptops, clocks in some VMs), and a GPU can
fall off the bus mid-run. None of that may crash a training job or the GUI, so failures turn
into a plain sentence (inventory) or missing keys (samples). No torch here: the GUI lists
devices before torch is loaded. Functions are looked up on the ``pynvml`` module at call
time so tests can stand in fake ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pynvml

log = logging.getLogger(__name__)

_MIB = 1024 * 1024


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as NVML numbers it; ``index`` is the NVML index, not CUDA_VISIBLE_DEVICES order."""

    index: int
    name: str
    memory_total_mb: float
    uuid: str


@dataclass(frozen=True)
class GpuInventory:
    """What the machine has, with a sentence for the person when it has nothing usable."""

    available: bool
    message: str
    gpus: tuple[GpuInfo, ...] = ()
    driver: str | None = None


def _text(value: str | bytes) -> str:
    """Older nvidia-ml-py releases return bytes where newer ones return str."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _init_failure_message(error: pynvml.NVMLError) -> str:
    code = getattr(error, "value", None)
    if code == pynvml.NVML_ERROR_LIBRARY_NOT_FOUND:
        return "No NVIDIA GPU: the NVIDIA driver (NVML) is not installed on this machine."
    if code == pynvml.NVML_ERROR_DRIVER_NOT_LOADED:
        return "No NVIDIA GPU: the NVIDIA driver is installed but not running."
    if code == pynvml.NVML_ERROR_NO_PERMISSION:
        return "No NVIDIA GPU: this user may not access the NVIDIA driver."
    return f"No NVIDIA GPU: the NVIDIA driver could not be started ({error})."


def _init() -> str | None:
    """Start NVML; None on success, else the sentence saying why there is no GPU."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return _init_failure_message(error)
    except OSError as error:  # a broken libnvidia-ml can fail below pynvml's own checks
        return f"No NVIDIA GPU: the NVIDIA driver library could not be loaded ({error})."
    return None


def _shutdown() -> None:
    try:
        pynvml.nvmlShutdown()
    except pynvml.NVMLError as error:
        log.debug("nvmlShutdown failed: %s", error)


def _handles() -> list[tuple[int, Any]]:
    """(index, handle) for each GPU whose handle NVML will give; a broken GPU is skipped."""
    handles = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        try:
            handles.append((index, pynvml.nvmlDeviceGetHandleByIndex(index)))
        except pynvml.NVMLError as error:
            log.warning("GPU %d is not usable: %s", index, error)
    return handles


def gpu_inventory() -> GpuInventory:
    """List the NVIDIA GPUs without loading torch; never raises for a missing driver or GPU."""
    failure = _init()
    if failure is not None:
        return GpuInventory(available=False, message=failure)
    try:
        try:
            driver: str | None = _text(pynvml.nvmlSystemGetDriverVersion())
        except pynvml.NVMLError:
            driver = None
        gpus = []
        for index, handle in _handles():
            try:
                gpus.append(
                    GpuInfo(
                        index=index,
                        name=_text(pynvml.nvmlDeviceGetName(handle)),
                        memory_total_mb=pynvml.nvmlDeviceGetMemoryInfo(handle).total / _MIB,
                        uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                    )
                )
            except pynvml.NVMLError as error:
                log.warning("GPU %d could not be described: %s", index, error)
    except pynvml.NVMLError as error:
        return GpuInventory(False, f"No NVIDIA GPU: the driver could not list GPUs ({error}).")
    finally:
        _shutdown()
    if not gpus:
        return GpuInventory(False, "No NVIDIA GPU: the driver is running but reports no GPU.")
    plural = "s" if len(gpus) > 1 else ""
    suffix = f", driver {driver}" if driver else ""
    return GpuInventory(True, f"{len(gpus)} NVIDIA GPU{plural}{suffix}", tuple(gpus), driver)


def gpu_free_memory() -> list[tuple[int, str, int]]:
    """(index, name, free bytes) per GPU right now; empty without NVML or a GPU. Never raises."""
    if _init() is not None:
        return []
    found = []
    try:
        for index, handle in _handles():
            try:
                name = _text(pynvml.nvmlDeviceGetName(handle)).removeprefix("NVIDIA ").strip()
                found.append((index, name, int(pynvml.nvmlDeviceGetMemoryInfo(handle).free)))
            except pynvml.NVMLError as error:
                log.warning("GPU %d memory could not be read: %s", index, error)
    except pynvml.NVMLError as error:
        log.warning("GPUs could not be listed: %s", error)
    finally:
        _shutdown()
    return found


def _throttle_reasons(handle: Any) -> int:
    # renamed "clocks event reasons" in NVML 12.2; keep the old name for older bindings
    query = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if query is None:
        query = pynvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return query(handle)


# metric suffix -> how to read it from a handle, in the unit the key names
_METRICS: dict[str, Callable[[Any], float]] = {
    "util_percent": lambda h: pynvml.nvmlDeviceGetUtilizationRates(h).gpu,
    "mem_used_mb": lambda h: pynvml.nvmlDeviceGetMemoryInfo(h).used / _MIB,
    "mem_total_mb": lambda h: pynvml.nvmlDeviceGetMemoryInfo(h).total / _MIB,
    "temp_c": lambda h: pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU),
    "power_w": lambda h: pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0,
    "power_limit_w": lambda h: pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0,
    "sm_clock_mhz": lambda h: pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM),
    "throttle_reasons": _throttle_reasons,
}


class NvmlSampler:
    """Live per-GPU readings, keyed ``gpu{i}.<metric>``; empty where there is no GPU.

    NVML is initialised once here and the handles kept, because a sampler runs a few times a
    second for a whole run and re-initialising costs milliseconds each time.
    """

    def __init__(self) -> None:
        self._handles: list[tuple[int, Any]] = []
        self._started = _init() is None
        if self._started:
            try:
                self._handles = _handles()
            except pynvml.NVMLError as error:
                log.warning("NVML could not list GPUs: %s", error)

    @property
    def gpu_indices(self) -> tuple[int, ...]:
        """The GPUs still being sampled."""
        return tuple(index for index, _ in self._handles)

    def sample(self) -> dict[str, float]:
        """One reading of every metric of every GPU; a GPU that answers nothing is dropped."""
        values: dict[str, float] = {}
        alive = []
        for index, handle in self._handles:
            answered = False
            for key, read in _METRICS.items():
                try:
                    values[f"gpu{index}.{key}"] = float(read(handle))
                    answered = True
                except pynvml.NVMLError:
                    continue  # unsupported here, or the GPU is gone: the others still count
            if answered:
                alive.append((index, handle))
            else:
                log.warning("GPU %d stopped answering NVML; it is no longer sampled", index)
        self._handles = alive
        return values

    def close(self) -> None:
        """Release NVML (once, however often this is called)."""
        self._handles = []
        if self._started:
            self._started = False
            _shutdown()

    def __enter__(self) -> NvmlSampler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def nvml_index_for_uuid(uuid: str) -> int | None:
    """NVML's index of the GPU with this UUID (as torch reports it), or None.

    CUDA numbers GPUs after CUDA_VISIBLE_DEVICES and NVML does not, so "cuda:0" can be NVML's
    GPU 3; the UUID is the one name both agree on. NVML writes "GPU-<uuid>", torch the bare
    UUID.
    """
    wanted = uuid.lower().removeprefix("gpu-")
    if not wanted or _init() is not None:
        return None
    try:
        for index, handle in _handles():
            try:
                name = _text(pynvml.nvmlDeviceGetUUID(handle)).lower()
            except pynvml.NVMLError:
                continue
            if name.removeprefix("gpu-").removeprefix("mig-") == wanted:
                return index
    except pynvml.NVMLError:
        return None
    finally:
        _shutdown()
    return None
