"""Per-device fast defaults: valid TrainSpec values, bf16 only where the GPU has it, no torch."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from cnn_lab.engine.specs import TrainSpec
from cnn_lab.engine.train.presets import (
    describe_fast_defaults,
    device_warnings,
    fast_defaults,
    is_ampere_or_newer,
)

AMPERE_OR_NEWER = (
    "NVIDIA A100-SXM4-80GB",
    "NVIDIA A10G",
    "NVIDIA H100 80GB HBM3",
    "NVIDIA H200",
    "NVIDIA GH200 480GB",
    "NVIDIA B200",
    "NVIDIA L4",
    "NVIDIA L40S",
    "NVIDIA RTX A6000",
    "NVIDIA RTX 6000 Ada Generation",
    "NVIDIA GeForce RTX 3060 Laptop GPU",
    "NVIDIA GeForce RTX 4090",
    "NVIDIA GeForce RTX 5090",
)
OLDER = (
    "Tesla V100-SXM2-16GB",
    "Tesla T4",
    "Tesla P100-PCIE-16GB",
    "NVIDIA GeForce RTX 2080 Ti",
    "Quadro RTX 8000",
    "NVIDIA GeForce GTX 1080",
    "NVIDIA TITAN V",
)
DEVICES: tuple[tuple[str, str | None], ...] = (
    ("cpu", None),
    ("mps", None),
    ("cuda", None),
    ("cuda", "NVIDIA H100 80GB HBM3"),
    ("cuda", "Tesla T4"),
    ("cuda:1", "NVIDIA L4"),
)


def merged(values: dict[str, Any]) -> TrainSpec:
    """The defaults with ``values`` on top, validated (model_copy would not validate)."""
    return TrainSpec.model_validate({**TrainSpec().model_dump(), **values})


@pytest.mark.parametrize(("kind", "gpu"), DEVICES)
def test_every_preset_validates_and_only_touches_speed_and_batch(
    kind: str, gpu: str | None
) -> None:
    values = fast_defaults(kind, gpu)
    spec = merged(values)
    assert set(values) <= set(TrainSpec.model_fields)
    # A preset changes how fast a recipe trains, never what it learns.
    assert not set(values) & {"lr", "optimizer", "schedule", "epochs", "weight_decay"}
    assert spec.batch_size == values["batch_size"]
    assert describe_fast_defaults(kind, gpu).startswith("Sets ")


@pytest.mark.parametrize("name", AMPERE_OR_NEWER)
def test_ampere_and_newer_gpus_get_bf16(name: str) -> None:
    assert is_ampere_or_newer(name)
    values = fast_defaults("cuda", name)
    assert values == {
        "precision": "bf16",
        "channels_last": True,
        "cudnn_benchmark": True,
        "fused_optimizer": "auto",
        "batch_size": 256,
    }
    assert device_warnings(merged(values).model_dump(), "cuda", name) == []


@pytest.mark.parametrize("name", [*OLDER, None, ""])
def test_older_or_unknown_gpus_get_fp16(name: str | None) -> None:
    assert not is_ampere_or_newer(name)
    assert fast_defaults("cuda", name)["precision"] == "fp16"


def test_cpu_defaults_are_fp32_channels_last_without_compile_or_cudnn() -> None:
    values = fast_defaults("cpu")
    assert values["precision"] == "fp32"
    assert values["channels_last"] is True
    assert values["compile"] is False
    assert values["cudnn_benchmark"] is None  # an explicit "on" is refused off CUDA
    assert values["batch_size"] == 64
    assert device_warnings(merged(values).model_dump(), "cpu") == []


def test_mps_defaults_keep_fp32_and_nchw() -> None:
    values = fast_defaults("mps")
    assert values["precision"] == "fp32"
    assert values["channels_last"] is False
    assert device_warnings(merged(values).model_dump(), "mps") == []


def test_gpu_settings_on_a_cpu_are_warned_about() -> None:
    gpu_values = merged(fast_defaults("cuda", "Tesla T4")).model_dump()
    warnings = device_warnings(gpu_values, "cpu")
    assert any("fp16 needs a GPU" in w for w in warnings)
    assert any("cuDNN benchmark" in w for w in warnings)
    assert device_warnings({"precision": "bf16"}, "cuda", "Tesla V100-SXM2-16GB")
    assert device_warnings({"precision": "bf16"}, "mps")


def test_unknown_device_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown device kind"):
        fast_defaults("tpu")


def test_presets_import_no_torch() -> None:
    code = (
        "import sys, cnn_lab.engine.train.presets as p; p.fast_defaults('cuda', 'NVIDIA L4'); "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
