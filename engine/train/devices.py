"""Choosing the device a run trains on, with sentences for devices that are not there."""

from __future__ import annotations

import os

import torch
from torch import nn

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape


def resolve_device(name: str) -> torch.device:
    """Map ``auto | cpu | mps | cuda | cuda:N`` to a torch.device that exists here."""
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise UserError(
                "The run asks for Apple's MPS device, which this machine does not have.",
                hint="Choose cpu or auto.",
            )
        return torch.device("mps")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(
                f"The run asks for {name}, but PyTorch sees no CUDA GPU on this machine.",
                hint="Choose cpu or auto, or check the NVIDIA driver.",
            )
        index = int(name.split(":", 1)[1]) if ":" in name else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise UserError(
                f"The run asks for {name}, but this machine has {count} CUDA GPU(s) "
                f"(cuda:0 to cuda:{count - 1}).",
            )
        return torch.device("cuda", index)
    raise UserError(f"Unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps.")


def describe_device(device: torch.device) -> str:
    """A short human name, e.g. 'cuda:0 (NVIDIA H100)' or 'cpu (2 threads)'."""
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def environment() -> dict[str, str]:
    """The versions a run trains with, saved in its summary so a report can say them later.

    Recorded by the run itself rather than read when the report is written: a report made a
    month later, after an upgrade, must still say what trained the run.
    """
    import platform

    from cnn_lab.engine import __version__

    found = {
        "cnn_lab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none (CPU build)",
        "platform": platform.platform(terse=True),
    }
    if torch.backends.cudnn.is_available():
        found["cudnn"] = str(torch.backends.cudnn.version())
    if torch.cuda.is_available():
        found["gpu"] = torch.cuda.get_device_name(0)
        found["driver"] = _nvidia_driver()
    return found


def _nvidia_driver() -> str:
    from cnn_lab.engine.monitor import nvml

    return nvml.gpu_inventory().driver or "unknown"


def model_cost(model: nn.Module, shape: InputShape) -> dict[str, int]:
    """Multiply-adds and activation bytes per image, for the bandwidth side of the diagnosis.

    Measured on a meta-device twin (no memory, no real compute); a network the summary cannot
    trace simply goes without, it never stops the run.
    """
    from cnn_lab.engine.models.summary import summarize

    try:
        summary = summarize(model, (shape.channels, shape.height, shape.width))
    except Exception:  # a diagnosis aid only: never fail a run for it
        return {}
    return {"macs_per_image": summary.macs, "activation_bytes_per_image": summary.activation_bytes}


def nvml_index(device: torch.device) -> int | None:
    """NVML's number for a CUDA device (None on other devices or without NVML)."""
    if device.type != "cuda":
        return None
    from cnn_lab.engine.monitor.nvml import nvml_index_for_uuid

    uuid = str(getattr(torch.cuda.get_device_properties(device), "uuid", ""))
    found = nvml_index_for_uuid(uuid)
    if found is None and "CUDA_VISIBLE_DEVICES" not in os.environ:
        return device.index or 0  # without remapping the two numberings agree
    return found
