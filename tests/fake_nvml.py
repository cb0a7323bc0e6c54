"""A fake NVML (two GPUs) for tests: most machines that run the tests have no NVIDIA GPU.

The NVML wrapper (engine/monitor/nvml.py) looks its functions up on the ``pynvml`` module
at call time, so patching the module is enough for the engine's samplers and for the GUI.
A test module uses the ``fake_nvml`` fixture (or ``no_nvml``, a machine without the driver)
by importing ``fake_nvml_fixture`` (``no_nvml_fixture``): the fixtures are registered under the
short names, so a test's ``fake_nvml`` argument does not shadow the import.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pynvml
import pytest


class FakeGpu:
    """A GPU handle whose queries answer until ``alive`` is cleared, then raise like NVML."""

    def __init__(self, name: str | bytes, unsupported: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.alive = True
        self.unsupported = unsupported

    def query(self, what: str, value: object) -> object:
        if not self.alive:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        if what in self.unsupported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value


def install_fake_nvml(monkeypatch: pytest.MonkeyPatch, gpus: list[FakeGpu]) -> dict[str, int]:
    """Patch pynvml so that ``gpus`` are the machine's GPUs; returns init/shutdown counts."""
    calls = {"init": 0, "shutdown": 0}
    memory = SimpleNamespace(total=8 * 1024**3, used=2 * 1024**3, free=6 * 1024**3)

    def count(name: str) -> object:
        def bump() -> None:
            calls[name] += 1

        return bump

    patches = {
        "nvmlInit": count("init"),
        "nvmlShutdown": count("shutdown"),
        "nvmlSystemGetDriverVersion": lambda: "550.54",
        "nvmlDeviceGetCount": lambda: len(gpus),
        "nvmlDeviceGetHandleByIndex": lambda i: gpus[i],
        "nvmlDeviceGetName": lambda h: h.query("name", h.name),
        "nvmlDeviceGetUUID": lambda h: h.query("uuid", f"GPU-{id(h)}"),
        "nvmlDeviceGetMemoryInfo": lambda h: h.query("memory", memory),
        "nvmlDeviceGetUtilizationRates": lambda h: h.query("util", SimpleNamespace(gpu=87)),
        "nvmlDeviceGetTemperature": lambda h, sensor: h.query("temp", 64),
        "nvmlDeviceGetPowerUsage": lambda h: h.query("power", 215_000),
        "nvmlDeviceGetEnforcedPowerLimit": lambda h: h.query("power", 300_000),
        "nvmlDeviceGetClockInfo": lambda h, clock: h.query("clock", 1755),
        "nvmlDeviceGetCurrentClocksEventReasons": lambda h: h.query("reasons", 4),
    }
    for name, fake in patches.items():
        monkeypatch.setattr(pynvml, name, fake)
    return calls


def install_no_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch pynvml so that starting NVML fails as it does without the NVIDIA driver."""

    def missing() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", missing)


@pytest.fixture(name="fake_nvml")
def fake_nvml_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """Two fake GPUs behind a patched pynvml (GPU 1 cannot read power); ``calls`` counts
    init and shutdown."""
    gpus = [FakeGpu("Fake GPU 0"), FakeGpu(b"Fake GPU 1", frozenset({"power"}))]
    calls = install_fake_nvml(monkeypatch, gpus)
    yield SimpleNamespace(gpus=gpus, calls=calls)


@pytest.fixture(name="no_nvml")
def no_nvml_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NVIDIA driver on this machine, whatever the real one has."""
    install_no_nvml(monkeypatch)
