"""Samplers for the monitor panel and the run store: NVML for GPUs, psutil for the rest.

The samplers import no torch, so the GUI can list GPUs and show system load before a job
starts. ``diagnosis`` (the bottleneck verdict, plain rules over measurements) is imported by
its full name. The training loop's step clock is engine/train/step_timing.py and the tracker
that feeds the diagnosis while a job runs is engine/jobs/bottleneck.py, so nothing here
depends on training.
"""

from cnn_lab.engine.monitor.nvml import GpuInfo, GpuInventory, NvmlSampler, gpu_inventory
from cnn_lab.engine.monitor.system import BackgroundSampler, SampleCallback, SystemSampler

__all__ = [
    "BackgroundSampler",
    "GpuInfo",
    "GpuInventory",
    "NvmlSampler",
    "SampleCallback",
    "SystemSampler",
    "gpu_inventory",
]
