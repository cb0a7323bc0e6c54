"""Samplers for the monitor panel and the run store: NVML for GPUs, psutil for the rest.

The samplers import no torch, so the GUI can list GPUs and show system load before a job
starts. ``step_timing`` (the training loop's clock) and ``diagnosis`` (the bottleneck verdict)
are imported by their full names: the clock needs torch, the diagnosis needs nothing.
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
