"""Canned tuner results in the agreed to_dict() shapes, and a runner that answers with them.

The fake runner answers synchronously inside ``start``, so panel tests need no event loop;
the real runner (a child process) is tested end to end in test_tune_panel.py.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QObject, Signal

from cnn_lab.engine.specs import RunSpec


def lr_result(steps: int = 60) -> dict[str, Any]:
    """A loss that falls fastest around 3e-3, bottoms out near 3e-2 and diverges after 0.3."""
    lrs = [1e-6 * (1.0 / 1e-6) ** (i / (steps - 1)) for i in range(steps)]
    smoothed = []
    for lr in lrs:
        x = math.log10(lr)
        drop = 1.5 / (1 + math.exp(-(x + 2.5) * 3))  # steepest at 10**-2.5 ≈ 3.2e-3
        rise = max(0.0, x + 0.5) ** 2 * 4  # diverges past 10**-0.5
        smoothed.append(2.3 - drop + rise)
    losses: list[float | None] = [s + 0.08 * math.sin(i * 1.7) for i, s in enumerate(smoothed)]
    losses[-1] = None  # non-finite losses arrive as None
    return {
        "lrs": lrs,
        "losses": losses,
        "smoothed": smoothed,
        "suggestion": 3.16e-3,
        "steepest_lr": 3.16e-3,
        "min_loss_lr": 0.1,
        "diverged_at": 0.5,
        "message": "The loss falls fastest near 3.2e-3; suggested learning rate 3.2e-3.",
    }


def batch_result() -> dict[str, Any]:
    return {
        "max_batch": 512,
        "method": "probe",
        "estimate_batch": 600,
        "per_image_bytes": 3_500_000,
        "budget_bytes": None,
        "probes": [
            {"batch": 64, "ok": True, "seconds": 0.11},
            {"batch": 128, "ok": True, "seconds": 0.19},
            {"batch": 256, "ok": True, "seconds": 0.35},
            {"batch": 512, "ok": True, "seconds": 0.66},
            {"batch": 1024, "ok": False, "seconds": 0.2},
            {"batch": 768, "ok": False, "seconds": 0.2},
        ],
        "message": "Batches up to 512 trained; 768 ran out of memory.",
        "device": "cuda:0",
    }


def speed_result() -> dict[str, Any]:
    return {
        "device": "cuda:0",
        "baseline": {"settings": {"precision": "fp32"}, "images_per_s": 1234.0},
        "best": {"settings": {"precision": "bf16"}, "images_per_s": 2283.0},
        "speedup": 2283.0 / 1234.0,
        "changes": {"precision": "bf16", "data_placement": "device", "cudnn_benchmark": True},
        "findings": [
            {
                "option": "precision",
                "value": "bf16",
                "images_per_s": 2010.0,
                "speedup": 1.63,
                "accepted": True,
                "note": "",
            },
            {
                "option": "data_placement",
                "value": "device",
                "images_per_s": 2150.0,
                "speedup": 1.07,
                "accepted": True,
                "note": "",
            },
            {
                "option": "cudnn_benchmark",
                "value": True,
                "images_per_s": 2283.0,
                "speedup": 1.06,
                "accepted": True,
                "note": "",
            },
            {
                "option": "compile",
                "value": True,
                "images_per_s": 2190.0,
                "speedup": 0.96,
                "accepted": False,
                "note": "slower after a 41 s compile; not worth it for short runs",
            },
            {
                "option": "fused_optimizer",
                "value": "foreach",
                "images_per_s": None,
                "speedup": None,
                "accepted": False,
                "note": "not measured: the optimizer has no foreach kernels",
            },
        ],
        "warnings": ["fp16 was skipped: bf16 is faster and needs no loss scaling."],
        "probe_seconds": 63.2,
        "message": "Three options together make training 1.85× faster.",
    }


CANNED = {"lr": lr_result, "batch-size": batch_result, "speed": speed_result}


class FakeRunner(QObject):
    """Answers ``start`` at once: progress, then the canned result or ``fail_with``."""

    progress = Signal(str, int, int)
    finished = Signal(dict)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.started: list[tuple[str, RunSpec, dict[str, Any]]] = []
        self.fail_with: str | None = None
        self.hold = False  # True: start answers nothing, as if the tuner were still running
        self.results = dict(CANNED)
        self.stopped = 0
        self.shut_down = 0

    def start(self, kind: str, spec: RunSpec, options: dict[str, Any]) -> None:
        self.started.append((kind, spec, options))
        if self.hold:
            return
        self.progress.emit("probing", 1, 2)
        if self.fail_with is not None:
            self.failed.emit(self.fail_with)
        else:
            self.finished.emit(self.results[kind]())

    def stop(self) -> None:
        self.stopped += 1
        self.cancelled.emit()

    def shutdown(self) -> None:
        self.shut_down += 1
