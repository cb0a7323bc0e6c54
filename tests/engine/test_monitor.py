"""The system and GPU samplers: plain answers without a GPU, no crashes when a GPU misbehaves.

Most machines that run these tests have no NVIDIA GPU, so GPU behaviour is checked against
a fake NVML (the wrapper looks functions up on ``pynvml`` at call time for this reason).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import psutil
import pynvml
import pytest

from cnn_lab.engine.monitor import (
    BackgroundSampler,
    NvmlSampler,
    SampleCallback,
    SystemSampler,
    gpu_inventory,
)
from tests.fake_nvml import fake_nvml_fixture  # noqa: F401  (the fake_nvml fixture)
from tests.waiting import wait_until

_METRICS = (
    "util_percent",
    "mem_used_mb",
    "mem_total_mb",
    "temp_c",
    "power_w",
    "power_limit_w",
    "sm_clock_mhz",
    "throttle_reasons",
)


# ------------------------------------------------------------------------------- NVML


def test_inventory_on_this_machine_is_a_plain_answer() -> None:
    inventory = gpu_inventory()
    if inventory.available:  # a GPU machine: the message counts GPUs and names the driver
        assert inventory.gpus and "NVIDIA GPU" in inventory.message
    else:
        assert inventory.message.startswith("No NVIDIA GPU")
        assert inventory.gpus == ()


def test_inventory_without_driver_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", missing)
    inventory = gpu_inventory()
    assert not inventory.available
    assert inventory.message == (
        "No NVIDIA GPU: the NVIDIA driver (NVML) is not installed on this machine."
    )
    assert inventory.driver is None


def test_sampler_without_gpu_returns_nothing() -> None:
    if gpu_inventory().available:
        pytest.skip("this machine has an NVIDIA GPU")
    sampler = NvmlSampler()
    assert sampler.sample() == {}
    sampler.close()
    sampler.close()  # idempotent


def test_inventory_lists_fake_gpus(fake_nvml: SimpleNamespace) -> None:
    inventory = gpu_inventory()
    assert inventory.available
    assert inventory.message == "2 NVIDIA GPUs, driver 550.54"
    assert [g.name for g in inventory.gpus] == ["Fake GPU 0", "Fake GPU 1"]  # bytes decoded
    assert inventory.gpus[1].index == 1
    assert inventory.gpus[0].memory_total_mb == 8192
    assert fake_nvml.calls == {"init": 1, "shutdown": 1}


def test_unsupported_query_loses_only_its_own_keys(fake_nvml: SimpleNamespace) -> None:
    with NvmlSampler() as sampler:
        values = sampler.sample()
    assert {f"gpu0.{m}" for m in _METRICS} <= values.keys()
    assert "gpu1.power_w" not in values and "gpu1.power_limit_w" not in values
    assert values["gpu1.util_percent"] == 87.0
    assert values["gpu0.power_w"] == 215.0 and values["gpu0.power_limit_w"] == 300.0
    assert values["gpu0.mem_used_mb"] == 2048.0
    assert values["gpu0.throttle_reasons"] == 4.0


def test_vanished_gpu_is_dropped_without_raising(fake_nvml: SimpleNamespace) -> None:
    sampler = NvmlSampler()
    assert sampler.gpu_indices == (0, 1)
    fake_nvml.gpus[1].alive = False
    values = sampler.sample()
    assert not any(key.startswith("gpu1.") for key in values)
    assert values["gpu0.temp_c"] == 64.0
    assert sampler.gpu_indices == (0,)
    fake_nvml.gpus[0].alive = False
    assert sampler.sample() == {}
    assert sampler.gpu_indices == ()
    sampler.close()
    sampler.close()
    assert fake_nvml.calls == {"init": 1, "shutdown": 1}


def test_system_sample_includes_gpu_keys(fake_nvml: SimpleNamespace) -> None:
    sampler = SystemSampler()
    values = sampler.sample()
    sampler.close()
    assert values["gpu1.sm_clock_mhz"] == 1755.0
    assert "cpu.percent" in values
    assert fake_nvml.calls["shutdown"] == 1


# ------------------------------------------------------------------------------- system


def test_system_keys_are_present_and_sane() -> None:
    sampler = SystemSampler()
    sum(i * i for i in range(200_000))  # a little CPU time between the two readings
    values = sampler.sample()
    sampler.close()
    cores = psutil.cpu_count() or 1
    for key in ["cpu.percent", "ram.percent", *(f"cpu.core{i}.percent" for i in range(cores))]:
        assert 0.0 <= values[key] <= 100.0, key
    assert values["ram.used_mb"] > 0
    assert values["proc.rss_mb"] > 0
    assert values["proc.cpu_percent"] >= 0
    assert all(isinstance(v, float) for v in values.values())


def test_disk_rates_are_non_negative() -> None:
    sampler = SystemSampler(gpu=False)
    for _ in range(3):
        values = sampler.sample()
        if psutil.disk_io_counters() is not None:
            assert values["disk.read_mb_s"] >= 0.0
            assert values["disk.write_mb_s"] >= 0.0


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child
    child.kill()
    child.wait()


def test_children_count_towards_the_process_rss(sleeper: subprocess.Popen[bytes]) -> None:
    child = psutil.Process(sleeper.pid)
    # The interpreter is still starting: wait until it holds some memory.
    wait_until(lambda: child.memory_info().rss >= 5 * 1024**2, timeout=10)
    own = psutil.Process().memory_info().rss / 1024**2
    values = SystemSampler(gpu=False).sample()
    assert values["proc.rss_mb"] > own + 0.5 * child.memory_info().rss / 1024**2


def test_dead_pid_yields_no_proc_keys() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    values = SystemSampler(child.pid, gpu=False).sample()
    assert not any(key.startswith("proc.") for key in values)
    assert "cpu.percent" in values


def test_process_that_exits_later_yields_no_proc_keys(sleeper: subprocess.Popen[bytes]) -> None:
    sampler = SystemSampler(sleeper.pid, gpu=False)
    assert "proc.rss_mb" in sampler.sample()
    sleeper.kill()
    sleeper.wait()
    assert not any(key.startswith("proc.") for key in sampler.sample())


# ------------------------------------------------------------------------------- background


def _collector(
    needed: int,
) -> tuple[list[tuple[float, dict[str, float]]], threading.Event, SampleCallback]:
    samples: list[tuple[float, dict[str, float]]] = []
    enough = threading.Event()

    def callback(when: float, values: dict[str, float]) -> None:
        samples.append((when, values))
        if len(samples) >= needed:
            enough.set()

    return samples, enough, callback


def test_background_sampler_delivers_and_stops_promptly() -> None:
    samples, enough, callback = _collector(3)
    background = BackgroundSampler(callback, hz=20.0, sampler=SystemSampler(gpu=False))
    background.start()
    try:
        assert enough.wait(timeout=5.0), f"only {len(samples)} samples arrived"
    finally:
        started = time.monotonic()
        background.stop()
        stopped_in = time.monotonic() - started
    assert stopped_in < 1.0
    assert not background.running
    times = [when for when, _ in samples]
    assert times == sorted(times)
    assert all("cpu.percent" in values for _, values in samples)


def test_callback_errors_are_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[float] = []
    enough = threading.Event()

    def flaky(when: float, values: dict[str, float]) -> None:
        calls.append(when)
        if len(calls) >= 3:
            enough.set()
        raise RuntimeError("callback broke")

    with caplog.at_level(logging.ERROR), BackgroundSampler(flaky, hz=20.0) as background:
        assert enough.wait(timeout=5.0)
        assert background.running
    assert "callback broke" in caplog.text
    assert not background.running


def test_background_sampler_rejects_a_bad_rate() -> None:
    with pytest.raises(ValueError):
        BackgroundSampler(lambda when, values: None, hz=0)
