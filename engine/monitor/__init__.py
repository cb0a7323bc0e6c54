"""Samplers for the monitor panel and the run store: NVML for GPUs, psutil for the rest.

Nothing here imports torch, so the GUI can list GPUs and show system load before a job
starts.
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
