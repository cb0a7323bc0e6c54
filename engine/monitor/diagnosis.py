"""The bottleneck verdict: input-, compute-, memory- or host-bound, with evidence and advice.

A verdict is only worth something with the numbers that led to it and a change the person can
make in cnn-lab, so each rule returns all three: a score (how strongly the numbers say it),
the evidence (named numbers and sentences stating them), and recommendations tied to
TrainSpec fields (or to the dataset and architecture where no training option helps). Rules
are registered with ``@rule``; the verdict is the strongest finding above ``THRESHOLD``.

The thresholds are rules of thumb from profiling practice (PyTorch's performance tuning guide,
NVIDIA's deep-learning performance guide): a GPU waiting for data more than a third of a step
is input-bound; one busy above ~80% with the step mostly compute is compute-bound; low GPU
utilisation with neither data waits nor a busy GPU means the host cannot launch work fast
enough. Pure Python, no torch: the tracker and the GUI both use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

INPUT_BOUND, COMPUTE_BOUND, MEMORY_BOUND, HOST_BOUND = (
    "input-bound",
    "compute-bound",
    "memory-bound",
    "host-bound",
)
BALANCED, WARMING_UP = "balanced", "warming-up"
VERDICTS = (INPUT_BOUND, COMPUTE_BOUND, MEMORY_BOUND, HOST_BOUND, BALANCED, WARMING_UP)

THRESHOLD = 0.3
"""A finding weaker than this is not called a bottleneck."""
MIN_STEPS = 10
"""Fewer measured steps than this (and under ``MIN_SECONDS`` of them) is too early to say."""
MIN_SECONDS = 2.0
BANDWIDTH_RIDGE_FLOPS_PER_BYTE = 60.0
"""Below this many training FLOPs per byte of activations a convnet cannot keep a modern GPU's
arithmetic units busy: memory bandwidth decides (A100/H100 need well over 100 from HBM)."""


@dataclass(frozen=True)
class Observations:
    """What the diagnosis looks at: means over a window of steps and of system samples."""

    steps: int
    data_ms: float
    copy_ms: float
    compute_ms: float
    other_ms: float
    step_ms: float
    images_per_s: float
    device_kind: str  # "cpu", "cuda", "mps"
    batch_size: int
    settings: dict[str, Any] = field(default_factory=dict)
    """The run's TrainSpec fields (precision, channels_last, compile, ...)."""
    data_on_device: bool = False
    cpu_count: int = 1
    cpu_percent: float | None = None
    proc_cpu_percent: float | None = None
    """The job's process tree, in percent of one core (may exceed 100)."""
    ram_percent: float | None = None
    gpu_util_percent: float | None = None
    gpu_mem_used_mb: float | None = None
    gpu_mem_total_mb: float | None = None
    disk_read_mb_s: float | None = None
    macs_per_image: int = 0
    activation_bytes_per_image: int = 0
    augment: str = ""

    def share(self, part_ms: float) -> float:
        return part_ms / self.step_ms if self.step_ms > 0 else 0.0

    @property
    def on_gpu(self) -> bool:
        return self.device_kind == "cuda"

    @property
    def flops_per_byte(self) -> float | None:
        """Training FLOPs (3 passes of 2 FLOPs per MAC) per activation byte written and read."""
        if not self.macs_per_image or not self.activation_bytes_per_image:
            return None
        return 6.0 * self.macs_per_image / (2.0 * self.activation_bytes_per_image)

    @property
    def gpu_mem_fraction(self) -> float | None:
        if self.gpu_mem_used_mb is None or not self.gpu_mem_total_mb:
            return None
        return self.gpu_mem_used_mb / self.gpu_mem_total_mb


@dataclass(frozen=True)
class Recommendation:
    option: str
    """A TrainSpec field the value applies to, or "dataset.…"/"architecture.…" for advice."""
    value: Any
    """The value to set (None when the advice has no single value)."""
    text: str


@dataclass(frozen=True)
class Finding:
    verdict: str
    score: float
    title: str
    evidence: dict[str, float]
    evidence_text: tuple[str, ...]
    recommendations: tuple[Recommendation, ...]


@dataclass(frozen=True)
class Diagnosis:
    verdict: str
    title: str
    evidence: dict[str, float]
    evidence_text: tuple[str, ...]
    recommendations: tuple[Recommendation, ...]
    steps: int
    others: tuple[str, ...] = ()
    """Weaker findings also above the threshold (a run can be two things at once)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "title": self.title,
            "evidence": {k: round(v, 4) for k, v in self.evidence.items()},
            "evidence_text": list(self.evidence_text),
            "recommendations": [asdict(r) for r in self.recommendations],
            "steps": self.steps,
            "others": list(self.others),
        }


Rule = Callable[[Observations], Finding | None]
_RULES: dict[str, Rule] = {}


def rule(verdict: str) -> Callable[[Rule], Rule]:
    """Register a rule that may find ``verdict``."""

    def register(fn: Rule) -> Rule:
        _RULES[verdict] = fn
        return fn

    return register


def diagnose(obs: Observations) -> Diagnosis:
    """The strongest finding, or "balanced" (or "warming-up" before enough steps)."""
    timing = _timing_evidence(obs)
    measured_s = obs.steps * obs.step_ms / 1000.0
    if obs.step_ms <= 0 or obs.steps < 3 or (obs.steps < MIN_STEPS and measured_s < MIN_SECONDS):
        return Diagnosis(
            WARMING_UP,
            f"Measuring: {obs.steps} steps so far; a verdict needs {MIN_STEPS} steps or "
            f"{MIN_SECONDS:.0f} seconds of them.",
            timing,
            (),
            (),
            obs.steps,
        )
    findings = [f for f in (fn(obs) for fn in _RULES.values()) if f and f.score >= THRESHOLD]
    findings.sort(key=lambda f: f.score, reverse=True)
    if not findings:
        return Diagnosis(
            BALANCED,
            "No single bottleneck: data, compute and the host each take a moderate share.",
            timing,
            _step_sentences(obs),
            (),
            obs.steps,
        )
    best = findings[0]
    return Diagnosis(
        best.verdict,
        best.title,
        {**timing, **best.evidence},
        best.evidence_text,
        best.recommendations,
        obs.steps,
        tuple(f.verdict for f in findings[1:]),
    )


# ---------------------------------------------------------------------------- evidence


def _timing_evidence(obs: Observations) -> dict[str, float]:
    return {
        "step_ms": obs.step_ms,
        "data_share": obs.share(obs.data_ms),
        "copy_share": obs.share(obs.copy_ms),
        "compute_share": obs.share(obs.compute_ms),
        "other_share": obs.share(obs.other_ms),
        "images_per_s": obs.images_per_s,
    }


def _step_sentences(obs: Observations) -> tuple[str, ...]:
    return (
        f"A step takes {obs.step_ms:.1f} ms: data {obs.data_ms:.1f} ms "
        f"({obs.share(obs.data_ms):.0%}), copy {obs.copy_ms:.1f} ms "
        f"({obs.share(obs.copy_ms):.0%}), compute {obs.compute_ms:.1f} ms "
        f"({obs.share(obs.compute_ms):.0%}), other {obs.other_ms:.1f} ms "
        f"({obs.share(obs.other_ms):.0%}).",
        f"{obs.images_per_s:,.0f} images/s at batch size {obs.batch_size}.",
    )


def _gpu_sentence(obs: Observations) -> tuple[str, ...]:
    if obs.gpu_util_percent is None:
        return ()
    text = f"GPU busy {obs.gpu_util_percent:.0f}% of the time"
    if obs.gpu_mem_fraction is not None:
        text += (
            f"; its memory {obs.gpu_mem_used_mb:,.0f} of {obs.gpu_mem_total_mb:,.0f} MiB "
            f"({obs.gpu_mem_fraction:.0%})"
        )
    return (text + ".",)


def _cpu_sentence(obs: Observations) -> tuple[str, ...]:
    if obs.proc_cpu_percent is None and obs.cpu_percent is None:
        return ()
    parts = []
    if obs.proc_cpu_percent is not None:
        parts.append(
            f"the job's processes use {obs.proc_cpu_percent / 100:.1f} of {obs.cpu_count} cores"
        )
    if obs.cpu_percent is not None:
        parts.append(f"the machine's CPU is {obs.cpu_percent:.0f}% busy")
    text = "; ".join(parts)
    return (text[0].upper() + text[1:] + ".",)


def _unless(obs: Observations, option: str, value: Any, text: str) -> list[Recommendation]:
    """The recommendation, unless the run already has that value."""
    if obs.settings.get(option) == value:
        return []
    return [Recommendation(option, value, text)]


# ---------------------------------------------------------------------------- the rules


@rule(INPUT_BOUND)
def _input_bound(obs: Observations) -> Finding | None:
    waiting = obs.share(obs.data_ms + obs.copy_ms)
    if waiting <= 0:
        return None
    recs: list[Recommendation] = []
    if not obs.data_on_device:
        recs += _unless(
            obs,
            "data_placement",
            "device",
            "Keep the training images on the device as uint8 (Data placement: device): a "
            "batch becomes one index on the device, with no copy and no host work.",
        )
    if obs.augment:
        recs.append(
            Recommendation(
                "dataset.augment",
                None,
                f"Lighten the augmentation ({obs.augment}): it runs in the loader for every "
                "batch, so fewer or weaker steps cut the data time directly.",
            )
        )
    recs.append(
        Recommendation(
            "dataset.image_size",
            None,
            "Train on smaller images (Data panel, image size): the loader's work and the copy "
            "grow with the pixel count.",
        )
    )
    text = (
        f"The loop waits {obs.data_ms + obs.copy_ms:.1f} ms of each {obs.step_ms:.1f} ms step "
        f"for data ({waiting:.0%}).",
        *_gpu_sentence(obs),
        *_cpu_sentence(obs),
    )
    if obs.disk_read_mb_s is not None and not obs.data_on_device:
        text += (f"Disk reads {obs.disk_read_mb_s:,.0f} MB/s.",)
    return Finding(
        INPUT_BOUND,
        waiting,
        f"Input-bound: the model waits for data {waiting:.0%} of each step.",
        {"waiting_share": waiting},
        text,
        tuple(recs),
    )


@rule(COMPUTE_BOUND)
def _compute_bound(obs: Observations) -> Finding | None:
    compute = obs.share(obs.compute_ms)
    if obs.on_gpu and obs.gpu_util_percent is not None and obs.gpu_util_percent < 80:
        return None  # the step is "compute" but the GPU idles: host-bound, not compute-bound
    fast = _fast_precision(obs)
    recs = _unless(
        obs,
        "precision",
        fast,
        "Mixed precision (bf16, or fp16 on pre-Ampere GPUs) runs convolutions on tensor "
        "cores and halves activation memory: typically 1.5-3x on a GPU."
        if obs.on_gpu
        else "bf16 autocast is faster on CPUs with AMX or AVX512-BF16 (Sapphire Rapids, "
        "Zen 4) and slower elsewhere: measure it with the speed advisor.",
    )
    recs += _unless(
        obs,
        "channels_last",
        True,
        "Channels-last (NHWC) memory layout: cuDNN and oneDNN convolutions are fastest in it.",
    )
    recs += _unless(
        obs,
        "compile",
        True,
        "torch.compile fuses the elementwise layers (BatchNorm, activations) into fewer "
        "kernels; it costs a compile at the start (measured apart).",
    )
    if obs.on_gpu:
        recs += _unless(
            obs,
            "cudnn_benchmark",
            True,
            "cuDNN benchmark picks the fastest convolution algorithm for these fixed sizes.",
        )
    recs.append(
        Recommendation(
            "architecture.width",
            None,
            "A narrower network (width multiplier below 1) trades a little accuracy for "
            "roughly quadratic savings in compute.",
        )
    )
    return Finding(
        COMPUTE_BOUND,
        compute if compute >= 0.6 else compute / 2,
        f"Compute-bound: forward, backward and the optimizer take {compute:.0%} of each step.",
        {"compute_share": compute},
        (
            f"Compute takes {obs.compute_ms:.1f} ms of each {obs.step_ms:.1f} ms step "
            f"({compute:.0%}); data waits only {obs.share(obs.data_ms):.0%}.",
            *_gpu_sentence(obs),
            *_cpu_sentence(obs),
        ),
        tuple(recs),
    )


@rule(MEMORY_BOUND)
def _memory_bound(obs: Observations) -> Finding | None:
    pressure = obs.gpu_mem_fraction if obs.on_gpu else _fraction(obs.ram_percent)
    intensity = obs.flops_per_byte
    bandwidth = (
        obs.on_gpu
        and intensity is not None
        and intensity < BANDWIDTH_RIDGE_FLOPS_PER_BYTE
        and (obs.gpu_util_percent or 0) >= 80
        and obs.share(obs.compute_ms) >= 0.6
    )
    where = "GPU" if obs.on_gpu else "RAM"
    recs: list[Recommendation] = []
    evidence: dict[str, float] = {}
    text: list[str] = []
    score = 0.0
    if pressure is not None and pressure >= 0.9:
        score = 0.5 + (pressure - 0.9) * 5  # 0.5 at 90% full, 1.0 at 100%
        evidence["memory_fraction"] = pressure
        text.append(f"{where} memory is {pressure:.0%} full.")
        half = max(1, obs.batch_size // 2)
        recs.append(
            Recommendation(
                "batch_size",
                half,
                f"Halve the batch to {half} and set gradient accumulation to 2: the same "
                "effective batch in half the activation memory.",
            )
        )
        recs += _unless(
            obs,
            "precision",
            _fast_precision(obs),
            "Mixed precision stores activations in 16 bits: about half the memory.",
        )
    if bandwidth and intensity is not None:
        # the step is compute, but the arithmetic waits on memory: the better explanation of
        # the same numbers, so it must outrank the compute-bound finding
        score = max(score, min(1.0, obs.share(obs.compute_ms) + 0.05))
        evidence["flops_per_byte"] = intensity
        text.append(
            f"The network does {intensity:.0f} FLOPs per byte of activations, below the "
            f"~{BANDWIDTH_RIDGE_FLOPS_PER_BYTE:.0f} a GPU needs to be limited by arithmetic: "
            "memory bandwidth sets the speed."
        )
        recs += _unless(
            obs,
            "precision",
            _fast_precision(obs),
            "16-bit activations halve the bytes every layer reads and writes.",
        )
        recs += _unless(
            obs,
            "compile",
            True,
            "torch.compile fuses BatchNorm and activations into the neighbouring kernels, "
            "so intermediate tensors are not written to memory and read back.",
        )
        recs += _unless(
            obs, "channels_last", True, "Channels-last avoids layout transposes around convs."
        )
    if score == 0.0:
        return None
    title = (
        f"Memory-bound: {where} memory is {pressure:.0%} full."
        if "memory_fraction" in evidence and pressure is not None
        else "Memory-bound: memory bandwidth, not arithmetic, sets the speed."
    )
    return Finding(
        MEMORY_BOUND,
        score,
        title,
        evidence,
        (*text, *_gpu_sentence(obs)),
        _dedupe(recs),
    )


@rule(HOST_BOUND)
def _host_bound(obs: Observations) -> Finding | None:
    data = obs.share(obs.data_ms + obs.copy_ms)
    other = obs.share(obs.other_ms)
    recs: list[Recommendation] = []
    if obs.on_gpu:
        if obs.gpu_util_percent is None or obs.gpu_util_percent >= 60 or data >= 0.3:
            return None
        idle = 1.0 - obs.gpu_util_percent / 100.0
        score = idle
        title = (
            f"Host-bound: the GPU is busy only {obs.gpu_util_percent:.0f}% of the time while "
            "the step waits neither on data nor on the GPU's arithmetic."
        )
        text = [
            f"GPU busy {obs.gpu_util_percent:.0f}%; data waits {data:.0%} of the step.",
            *_cpu_sentence(obs),
            "Small kernels: Python and kernel launches on the CPU cannot keep the GPU fed.",
        ]
        evidence = {"gpu_idle_share": idle}
    else:
        if other < 0.15:
            return None
        score = other / 0.5
        title = f"Host-bound: {other:.0%} of each step goes to bookkeeping outside the model."
        text = [
            f"Recording, events and checks take {obs.other_ms:.1f} ms of each "
            f"{obs.step_ms:.1f} ms step ({other:.0%}).",
        ]
        evidence = {"other_share": other}
    double = obs.batch_size * 2
    recs.append(
        Recommendation(
            "batch_size",
            double,
            f"A larger batch ({double}) gives each launch (and each step's bookkeeping) more "
            "work; scale the learning rate with it.",
        )
    )
    recs += _unless(
        obs,
        "compile",
        True,
        "torch.compile turns many small kernels into a few fused ones: fewer launches.",
    )
    if obs.on_gpu:
        recs += _unless(
            obs,
            "fused_optimizer",
            "fused",
            "A fused optimizer updates every parameter in one kernel instead of one per tensor.",
        )
    return Finding(HOST_BOUND, min(1.0, score), title, evidence, tuple(text), tuple(recs))


def _fast_precision(obs: Observations) -> str:
    if obs.on_gpu and obs.settings.get("bf16_supported") is False:
        return "fp16"
    return "bf16"


def _fraction(percent: float | None) -> float | None:
    return None if percent is None else percent / 100.0


def _dedupe(recs: list[Recommendation]) -> tuple[Recommendation, ...]:
    seen: set[tuple[str, Any]] = set()
    kept = []
    for rec in recs:
        key = (rec.option, repr(rec.value))
        if key not in seen:
            seen.add(key)
            kept.append(rec)
    return tuple(kept)
