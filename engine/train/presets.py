"""Per-device speed settings that are known to be fast, and what a device cannot do.

This is policy, not computation, so it lives in the engine where the CLI can use it too, and
it imports no torch: the Hyperparameters panel asks for it before torch has loaded. The device
is described by NVML's kind and name (``"cuda"``, ``"NVIDIA H100 80GB HBM3"``), which is what
the GUI knows without starting CUDA.

Only speed fields change, plus the batch size: a preset never touches the learning rate, the
schedule or anything else that decides what the model learns, so applying one to a tuned recipe
changes how fast it trains, not what it reaches (a larger batch may want a larger rate; the
Hyperparameters panel says so).
"""

from __future__ import annotations

import re
from typing import Any, Literal

DeviceKind = Literal["cpu", "cuda", "mps"]

# Ampere (sm_80) and newer have bfloat16 tensor cores. NVML names the board, not the
# architecture, so this matches the names of Ampere, Ada, Hopper and Blackwell parts:
# data-centre A/H/B/GB/GH/L numbers (A100, A10G, A2, H100, H200, B200, GH200, L4, L40S), the
# workstation RTX Axxxx, "RTX 6000 Ada" and "RTX PRO 6000 Blackwell" boards, GeForce RTX
# 30/40/50 series and Jetson Orin. Volta (V100), Turing (T4, RTX 20xx, Quadro RTX) and
# older do not match.
_AMPERE_OR_NEWER = re.compile(
    r"\b(?:A|H|B|GB|GH|L)\d{1,4}[A-Z]?\b"
    r"|\bRTX\s*(?:30|40|50)\d{2}\b"
    r"|\b(?:Ada|Blackwell|Orin)\b",
    re.IGNORECASE,
)

CUDA_BATCH = 256
"""Large enough to keep a modern GPU busy on small images; small enough for 8 GB cards with
the networks cnn-lab builds (the batch-size finder can say more for a given model)."""
CPU_BATCH = 64
"""On a CPU larger batches barely raise images per second but slow each epoch's feedback."""


def is_ampere_or_newer(gpu_name: str | None) -> bool:
    """Whether an NVIDIA GPU of this name has bfloat16 tensor cores (compute capability 8+).

    Unknown names count as older: fp16 runs on every CUDA GPU, bf16 is refused on older ones.
    """
    return bool(gpu_name) and _AMPERE_OR_NEWER.search(gpu_name or "") is not None


def fast_defaults(device_kind: str, gpu_name: str | None = None) -> dict[str, Any]:
    """TrainSpec field values that train fast on ``device_kind`` (``cuda``, ``cpu`` or ``mps``).

    Merge them into an existing spec (``spec.model_copy(update=...)`` or the form's values);
    every value is valid for TrainSpec on its own. ``cudnn_benchmark`` is left on automatic
    off CUDA, because the engine refuses an explicit "on" where there is no cuDNN.
    """
    kind = device_kind.strip().lower().split(":", 1)[0]
    if kind == "cuda":
        return {
            # bf16 needs no gradient scaler and has fp32's range; older GPUs only have fp16.
            "precision": "bf16" if is_ampere_or_newer(gpu_name) else "fp16",
            "channels_last": True,  # tensor cores want NHWC; NCHW costs a transpose per conv
            "cudnn_benchmark": True,  # fixed image sizes: the one-off kernel timing pays back
            "fused_optimizer": "auto",  # one fused kernel instead of one launch per tensor
            "batch_size": CUDA_BATCH,
        }
    if kind == "mps":
        return {
            # MPS autocast is still patchy across torch releases and bf16 is refused there;
            # fp32 is the setting that always runs, and NHWC has no fast path on Metal.
            "precision": "fp32",
            "channels_last": False,
            "cudnn_benchmark": None,
            "compile": False,
            "fused_optimizer": "auto",
            "batch_size": CPU_BATCH,
        }
    if kind == "cpu":
        return {
            # bf16 autocast is only faster on CPUs with AMX or AVX512-BF16 (Sapphire Rapids,
            # Zen 4); elsewhere it is slower than fp32, and the GUI cannot tell which without
            # loading torch. fp32 is the safe default; try bf16 on a recent server CPU.
            "precision": "fp32",
            "channels_last": True,  # oneDNN's convolutions are fastest in NHWC
            "cudnn_benchmark": None,
            "compile": False,  # needs a C++ toolchain and gains little for small convnets
            "fused_optimizer": "auto",  # fused SGD/Adam(W) on a CPU: 3-4x faster steps
            "batch_size": CPU_BATCH,
        }
    raise ValueError(f"unknown device kind {device_kind!r}; use cpu, cuda or mps")


def describe_fast_defaults(device_kind: str, gpu_name: str | None = None) -> str:
    """One sentence saying what ``fast_defaults`` sets, for a button's tooltip."""
    values = fast_defaults(device_kind, gpu_name)
    parts = [
        f"{values['precision']} precision",
        "channels-last layout" if values["channels_last"] else "the default (NCHW) layout",
    ]
    if values["cudnn_benchmark"]:
        parts.append("cuDNN benchmark on")
    parts.append("fused optimizer kernels where they exist")
    parts.append(f"batch size {values['batch_size']}")
    return "Sets " + ", ".join(parts) + "; the learning rate and schedule stay as they are."


def device_warnings(
    values: dict[str, Any], device_kind: str, gpu_name: str | None = None
) -> list[str]:
    """Sentences for options this device will refuse when training starts.

    The same rules as ``engine/train/options.check_options``, asked before torch loads so the
    person hears them while editing rather than after pressing Train. ``values`` holds
    TrainSpec fields (a spec's ``model_dump()``).
    """
    kind = device_kind.strip().lower().split(":", 1)[0]
    warnings = []
    precision = values.get("precision")
    if precision == "fp16" and kind == "cpu":
        warnings.append(
            "fp16 needs a GPU: on the CPU this run would be refused. Choose bf16 or fp32."
        )
    if precision == "bf16" and kind == "mps":
        warnings.append("Apple's MPS has no bf16 autocast: choose fp16 or fp32.")
    if precision == "bf16" and kind == "cuda" and gpu_name and not is_ampere_or_newer(gpu_name):
        warnings.append(
            f"{gpu_name} probably has no bfloat16 support (it predates Ampere): choose fp16."
        )
    if values.get("cudnn_benchmark") and kind != "cuda":
        warnings.append(
            f"cuDNN benchmark only applies to NVIDIA GPUs and this run trains on the "
            f"{kind.upper()}: set it to automatic."
        )
    return warnings
