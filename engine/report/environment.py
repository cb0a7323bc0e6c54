"""Where a run trained and what wrote the report, without importing torch to find out.

A run that recorded its environment in its summary (``summary["environment"]``: a dict with
any of ``cnn_lab``, ``python``, ``torch``, ``cuda``, ``cudnn``, ``platform``) is reported as
recorded; anything it did not record says so rather than guessing from this machine. The
report writer's own versions are listed apart, the installed torch read from package
metadata (importing torch costs seconds and a GPU context).
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from cnn_lab.engine import __version__
from cnn_lab.engine.report.data import Fact
from cnn_lab.engine.store import RunRecord

NOT_RECORDED = "not recorded by the run"

RECORDED: tuple[tuple[str, str], ...] = (
    ("cnn_lab", "cnn-lab"),
    ("python", "Python"),
    ("torch", "PyTorch"),
    ("cuda", "CUDA"),
    ("cudnn", "cuDNN"),
    ("platform", "Operating system"),
    ("gpu", "GPU"),
    ("driver", "NVIDIA driver"),
)


def _installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def run_environment(record: RunRecord) -> tuple[Fact, ...]:
    """The run's device, host and (when it recorded them) versions."""
    summary = record.summary
    recorded: dict[str, Any] = summary.get("environment") or {}
    if not isinstance(recorded, dict):
        recorded = {}
    facts = [
        Fact("Device", str(summary.get("device") or record.device or "unknown")),
        Fact("Host", record.host or "unknown"),
    ]
    # A run that recorded its environment but no GPU had none (it trained on the CPU).
    missing = "none" if recorded else NOT_RECORDED
    facts += [Fact(label, str(recorded.get(key) or missing)) for key, label in RECORDED]
    return tuple(facts)


def writer_environment() -> tuple[Fact, ...]:
    """The versions that wrote this report (not necessarily those that trained the run)."""
    return (
        Fact("Report written by", f"cnn-lab {__version__}"),
        Fact("Its Python", platform.python_version()),
        Fact("Its PyTorch (installed)", _installed("torch")),
        Fact("Its system", platform.platform(terse=True)),
    )


def generated_line() -> str:
    from datetime import datetime

    return f"cnn-lab {__version__}, {datetime.now().strftime('%Y-%m-%d %H:%M')}"
