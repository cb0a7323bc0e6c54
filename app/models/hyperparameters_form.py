"""The Hyperparameters form's rules, apart from its widgets: what each field is called and does,
which fields show for the chosen optimizer and schedule, the learning rate the form suggests,
and the TrainSpec (or the sentence that refuses it) that the fields make.

The panel (app/panels/hyperparameters_panel.py) shows what this says and writes what the
person typed into it. Learning-rate policy: choosing another optimizer puts its registry
``default_lr`` into the rate unless the rate there is the person's own, i.e. neither the
previous optimizer's suggestion nor TrainSpec's default. A rate someone typed (or loaded from
a tuned run) is never overwritten: a note says what the new optimizer usually starts at.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

from pydantic_core import ValidationError  # not pydantic's: see app/panels/data_panel.py

from cnn_lab.engine.monitor.nvml import GpuInfo
from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec, RunSpec, TrainSpec
from cnn_lab.engine.specs.base import clean_message
from cnn_lab.engine.specs.train import FineTuneSpec, fine_tuning
from cnn_lab.engine.train.fine_tune_plan import phase_lines
from cnn_lab.engine.train.optimizers import OptimizerInfo, optimizer_info, optimizer_names
from cnn_lab.engine.train.presets import device_warnings
from cnn_lab.engine.train.schedules import ScheduleInfo, schedule_info, schedule_names

# What each option does, and what it costs or buys in speed and accuracy (tooltips).
HELP: dict[str, str] = {
    "epochs": "Passes over the training images. More epochs usually raise accuracy until the "
    "model starts to overfit; training time grows in proportion.",
    "batch_size": "Images per step. Larger batches use the hardware better (faster epochs, more "
    "images per second) but need more memory and often a larger learning rate; very large "
    "ones can cost some accuracy.",
    "lr": "Step size of the optimizer, the setting that matters most for accuracy: too high "
    "diverges, too low crawls and ends less accurate in the same time. Choosing another "
    "optimizer puts in its usual rate, unless you typed a rate of your own.",
    "optimizer": "How the gradients become weight updates. SGD with momentum often ends most "
    "accurate on CNNs given a tuned rate; Adam-type optimizers converge faster with less "
    "tuning. Similar speed per step. Hover an entry for its description.",
    "momentum": "Carries this fraction of the last step into the next: smooths noisy gradients "
    "and speeds progress along steady directions (0.9 is usual). No cost in time.",
    "nesterov": "Takes the gradient after a look-ahead along the momentum: usually converges a "
    "little faster than plain momentum, at no cost.",
    "weight_decay": "Pulls the weights (not biases or normalisation scales) towards zero each "
    "step: regularises, often worth a point or two of accuracy on small datasets; no speed "
    "cost. Around 5e-4 for SGD, 0.01-0.05 for AdamW.",
    "warmup_epochs": "Raises the rate linearly from 1% to the full rate over this many epochs "
    "(fractions allowed) before the schedule: steadies the first steps of large rates or "
    "batches. 0 = none.",
    "schedule": "How the learning rate changes during training. Decaying schedules (cosine, "
    "one-cycle) usually reach higher accuracy in the same number of epochs than a constant "
    "rate; no cost in speed. Hover an entry for its description.",
    "lr_decay": "What the rate is multiplied by at each drop (step schedule: at 50% and 75% of "
    "training; plateau: when the monitored metric stalls).",
    "plateau_patience": "Epochs without improvement of the monitored metric before the rate "
    "drops. Small values react fast but may drop on noise.",
    "label_smoothing": "Trains against softened targets (1 − ε for the true class): curbs "
    "over-confidence and often adds half a point or more of accuracy; 0.1 is typical. No "
    "speed cost.",
    "grad_clip": "Clips the gradients' global norm to this value: steadier training with high "
    "learning rates, mixed precision or no normalisation layers, where a rare huge step would "
    "derail it. Costs a little speed per step (one norm).",
    "ema_decay": "Evaluates an exponential moving average of the weights (e.g. 0.999): often a "
    "smoother, slightly more accurate model, for one extra copy of the weights and a cheap "
    "update per step.",
    "tta_flip": "Evaluates each image and its mirror image and averages the two: often a bit "
    "more accurate on photos; doubles evaluation time (not training time). Wrong for data "
    "whose left and right differ, such as digits or text.",
    "seed": "Seeds the initial weights and the shuffling: the same seed and recipe give "
    "comparable runs; change it to see how much of a result is chance.",
    "precision": "fp32 is the reference. bf16 and fp16 run the forward pass in 16 bits: about "
    "twice as fast on tensor-core GPUs, usually with the same accuracy. bf16 needs an Ampere "
    "or newer GPU (or a CPU with AMX); fp16 works on every NVIDIA GPU but not on the CPU.",
    "channels_last": "Stores images and weights as NHWC. Convolutions run faster this way on "
    "most CPUs and on tensor-core GPUs (see benchmarks/channels_last.py). Same results.",
    "cudnn_benchmark": "Lets cuDNN time its convolution algorithms on the first batches and "
    "keep the fastest: faster from then on when image sizes are fixed. Only for NVIDIA "
    "GPUs; automatic means on there.",
    "compile": "Compiles the model with torch.compile: fused operations, often 1.2-2x faster "
    "steps on a GPU, after a compile of tens of seconds to minutes (reported apart). Worth "
    "it for long runs.",
    "deterministic": "Uses only deterministic kernels (and no cuDNN autotuning), so that a run "
    "and its resume give bit-identical weights on a GPU too. Slower on GPUs. Off, a resumed run "
    "is bit-exact on the CPU and equal up to float rounding on a GPU.",
    "fused_optimizer": "How the optimizer updates the weights: fused does every tensor in one "
    "kernel (fastest), foreach groups them, off loops over tensors. Same results; automatic "
    "takes fused where PyTorch has it.",
    "grad_accumulation": "Takes an optimizer step every N batches, so training behaves as if "
    "the batch were N times larger when that does not fit in memory. Same speed per image: "
    "it buys the large batch's behaviour, not its speed.",
    "world_size": "Data-parallel processes (DDP): one per GPU on CUDA, or gloo processes on "
    "the CPU. Each takes its share of the batch: nearly N times faster with N GPUs, rarely "
    "faster on a CPU.",
    "max_steps": "Stops after this many optimizer steps in all: fast probes of speed, or of "
    "whether a recipe starts to learn at all; the model is far from its best accuracy.",
    "early_stopping": "Stops after this many epochs without improvement of the monitored "
    "metric: a faster search that skips the epochs that would not help accuracy. The best "
    "checkpoint is kept.",
    "monitor": "The validation metric that early stopping, the plateau schedule and the best "
    "checkpoint follow.",
    "min_delta": "How much the monitored metric must improve to count as better (0 = any "
    "improvement).",
    "device": "Where the run trains. Automatic takes the first GPU if there is one, else the CPU.",
    "fine_tune": "Fine-tuning a pretrained network: train the new head alone first, then every "
    "layer with lower rates for earlier layers, which hold general features. Reaches good "
    "accuracy in far fewer epochs than training from scratch; automatic turns it on when the "
    "network starts from trained weights.",
}

FINE_TUNE_HELP: dict[str, tuple[str, str]] = {
    "mode": ("Fine-tuning", HELP["fine_tune"]),
    "head_epochs": (
        "Head epochs",
        "Epochs that train the classifier head alone, the rest frozen (BatchNorm statistics "
        "too), before every layer trains. Counted within Epochs; 1 is usual.",
    ),
    "lr_ratio": (
        "Rate ratio",
        "How many times lower the earliest layers' rate is than the head's; the groups in "
        "between are spaced evenly on a log scale (100: 1e-5 … 1e-3 for a rate of 1e-3).",
    ),
    "groups": (
        "Layer groups",
        "Parts the network is split into for the rates, the head being the last; the rest is "
        "cut in order into parts of equal parameter count.",
    ),
}
"""The fine-tuning box's fields: (label, tooltip)."""

LABELS: dict[str, str] = {
    "epochs": "Epochs",
    "batch_size": "Batch size",
    "lr": "Learning rate",
    "optimizer": "Optimizer",
    "momentum": "Momentum",
    "nesterov": "Nesterov",
    "weight_decay": "Weight decay",
    "schedule": "Schedule",
    "warmup_epochs": "Warm-up epochs",
    "lr_decay": "Decay factor",
    "plateau_patience": "Plateau patience",
    "label_smoothing": "Label smoothing",
    "grad_clip": "Gradient clipping",
    "ema_decay": "Weight EMA",
    "tta_flip": "Flip at test time",
    "seed": "Seed",
    "precision": "Precision",
    "channels_last": "Memory layout",
    "cudnn_benchmark": "cuDNN benchmark",
    "compile": "torch.compile",
    "deterministic": "Deterministic",
    "fused_optimizer": "Optimizer kernels",
    "grad_accumulation": "Accumulation steps",
    "world_size": "Processes (DDP)",
    "max_steps": "Step limit",
    "early_stopping": "Early stopping",
    "monitor": "Monitor",
    "min_delta": "Minimum improvement",
    "device": "Device",
    "fine_tune": "Fine-tuning",
}

OPTIMIZER_FIELDS = ("momentum", "nesterov", "weight_decay")
"""The fields an optimizer's registry entry may claim; the others are hidden for it."""
SCHEDULE_FIELDS = ("warmup_epochs", "lr_decay", "plateau_patience")
"""The Recipe fields a schedule's registry entry may claim (monitor and min_delta stay in
Stopping and are always shown, because early stopping and the best checkpoint use them too)."""

CHOICES: dict[str, list[tuple[str, Any, str]]] = {
    "precision": [
        ("fp32 (full precision)", "fp32", "The reference: slowest on GPUs."),
        ("bf16 mixed precision", "bf16", "Ampere+ GPUs and AMX CPUs."),
        ("fp16 mixed precision", "fp16", "Any NVIDIA GPU; not the CPU."),
    ],
    "cudnn_benchmark": [
        ("Automatic (on for CUDA)", None, ""),
        ("On", True, ""),
        ("Off", False, ""),
    ],
    "fused_optimizer": [
        ("Automatic (fused where possible)", "auto", ""),
        ("Fused", "fused", ""),
        ("Foreach", "foreach", ""),
        ("Off (one tensor at a time)", "off", ""),
    ],
    "monitor": [("Validation accuracy", "val.accuracy", ""), ("Validation loss", "val.loss", "")],
    "fine_tune_mode": [
        (
            "Automatic (on for pretrained weights)",
            "auto",
            "On when the network starts from published weights or a weights file.",
        ),
        ("On: head first, then all layers", "on", ""),
        ("Off: every layer at one rate", "off", ""),
    ],
}
"""The fixed choices of the form: (label, value, tooltip); the registries give the others."""
FINE_TUNE_CHOICES = {"mode": CHOICES["fine_tune_mode"]}
"""The fine-tuning box's fields that are choices."""


def optimizer_choices() -> list[tuple[str, str, str]]:
    """Every registered optimizer as (label, name, description)."""
    return [(optimizer_info(n).label, n, optimizer_info(n).description) for n in optimizer_names()]


def schedule_choices() -> list[tuple[str, str, str]]:
    """Every registered schedule as (label, name, description)."""
    return [(schedule_info(n).label, n, schedule_info(n).description) for n in schedule_names()]


def device_choices(gpus: Sequence[GpuInfo], platform: str) -> list[tuple[str, str]]:
    """Where a run can train on this machine: automatic, the CPU, Apple's GPU on a Mac, all
    GPUs together (for data parallel) when there are several, and each GPU."""
    choices = [("Automatic (GPU if present)", "auto"), ("CPU", "cpu")]
    if platform == "darwin":
        choices.append(("Apple GPU (MPS)", "mps"))
    if len(gpus) > 1:
        choices.append((f"All {len(gpus)} GPUs (for data parallel)", "cuda"))
    choices += [(f"cuda:{gpu.index}: {gpu.name}", f"cuda:{gpu.index}") for gpu in gpus]
    return choices


def optimizer_or_none(name: str) -> OptimizerInfo | None:
    """The registry's entry for ``name``; None for one this build lacks (a newer run's)."""
    try:
        return optimizer_info(name)
    except KeyError:
        return None


def schedule_or_none(name: str) -> ScheduleInfo | None:
    """The registry's entry for ``name``; None for one this build lacks (a newer run's)."""
    try:
        return schedule_info(name)
    except KeyError:
        return None


def visible_fields(optimizer: str, schedule: str) -> dict[str, bool]:
    """Whether each optimizer and schedule field shows: only those that mean something for
    the chosen ones (an optimizer or schedule the registries lack shows them all)."""
    opt, sched = optimizer_or_none(optimizer), schedule_or_none(schedule)
    used = set(opt.fields if opt is not None else OPTIMIZER_FIELDS)
    used |= set(sched.fields if sched is not None else SCHEDULE_FIELDS)
    return {name: name in used for name in OPTIMIZER_FIELDS + SCHEDULE_FIELDS}


def description(info: OptimizerInfo | ScheduleInfo | None) -> str:
    """The text under an optimizer or schedule choice: what it does (nothing if unknown)."""
    return info.description if info is not None else ""


def is_own_rate(lr: float, optimizer: str) -> bool:
    """Whether ``lr`` is the person's choice rather than a suggestion the form put there."""
    info = optimizer_or_none(optimizer)
    suggested = [TrainSpec.model_fields["lr"].default]
    if info is not None:
        suggested.append(info.default_lr)
    return not any(math.isclose(lr, s, rel_tol=1e-9) for s in suggested)


def device_target(device: str, gpus: Sequence[GpuInfo]) -> tuple[str, str | None]:
    """(kind, GPU name) of a device choice: automatic is the first GPU if any, else the CPU."""
    if device in ("cpu", "mps"):
        return device, None
    if device == "auto":
        return ("cuda", gpus[0].name) if gpus else ("cpu", None)
    index = int(device.split(":", 1)[1]) if ":" in device else None
    names = [gpu.name for gpu in gpus if index is None or gpu.index == index]
    return "cuda", names[0] if names else None


def device_label(kind: str, gpu_name: str | None) -> str:
    """The device as the fast-defaults button and its undo step name it."""
    if kind == "cuda":
        return gpu_name or "the CUDA GPU"
    return {"cpu": "CPU", "mps": "Apple GPU"}[kind]


def effective_batch_text(values: dict[str, Any]) -> str:
    """Images per optimizer step, and per process when data parallel splits the batch."""
    batch, steps = values["batch_size"], values["grad_accumulation"]
    processes = values["world_size"]
    text = f"Effective batch: {batch * steps} images per optimizer step"
    if 1 < processes <= batch:
        text += f", {batch // processes} per process"
    return text + "."


def fine_tune_text(train: TrainSpec, architecture: ArchitectureSpec) -> str:
    """Whether the recipe fine-tunes for this architecture, and its two phases in words."""
    spec = RunSpec(dataset=DatasetSpec(), architecture=architecture, train=train)
    decision = fine_tuning(spec)
    if not decision.on:
        return decision.reason
    return "\n".join([decision.reason, *phase_lines(train)])


def fine_tune_value_text(value: FineTuneSpec) -> str:
    """The fine-tuning recipe in one line, for the undo step's name."""
    return (
        f"{value.mode}, {value.head_epochs} head epoch(s), ratio {value.lr_ratio:g}, "
        f"{value.groups} groups"
    )


def problem_text(problem: str) -> str:
    """The sentence under the form for a refused recipe ("" when there is none)."""
    return f"{problem} Until it is fixed, Train uses the last valid recipe." if problem else ""


def sentences(error: ValidationError) -> str:
    """What is wrong with the form, in sentences that use the form's labels."""
    parts = []
    for item in error.errors(include_url=False):
        message = clean_message(str(item.get("msg", "is not valid")))
        loc = item.get("loc", ())
        if loc:
            parts.append(f"{LABELS.get(str(loc[0]), str(loc[0]))}: {message}.")
        else:
            parts.append(message[:1].upper() + message[1:] + ".")
    return " ".join(parts)


def form_problem(spec: TrainSpec) -> str:
    """A combination the engine refuses when training starts, caught while editing."""
    if spec.warmup_epochs > 0 and spec.warmup_epochs >= spec.epochs:
        return (
            f"The warm-up ({spec.warmup_epochs:g} epochs) is as long as the whole run "
            f"({spec.epochs} epochs): make it a small part of training, such as 1 epoch."
        )
    return ""


def check(values: dict[str, Any]) -> tuple[TrainSpec | None, str]:
    """The TrainSpec the form's values make, or None and the sentence that says why not.

    The state only ever holds a valid TrainSpec: a refused recipe (pydantic's refusal, or a
    combination the engine refuses when training starts) stays in the form.
    """
    try:
        spec = TrainSpec(**values)
    except ValidationError as error:
        return None, sentences(error)
    problem = form_problem(spec)
    return (None, problem) if problem else (spec, "")


class HyperparametersForm:
    """What the form remembers besides its widgets' values.

    ``pushed`` is the last valid recipe it gave the state; ``note`` a one-off remark (the rate
    kept, the defaults applied); ``passthrough`` the loaded values of fields the form has no
    widget for (a newer TrainSpec's), which the next recipe keeps unchanged.
    """

    def __init__(self, spec: TrainSpec) -> None:
        self.pushed = spec
        self.note = ""
        self.passthrough: dict[str, Any] = {}
        self.lr_own = False
        self.optimizer_shown = spec.optimizer

    def values(self, shown: dict[str, Any]) -> dict[str, Any]:
        """The TrainSpec fields from the values ``shown`` in the widgets (not yet validated)."""
        values = dict(self.passthrough)
        values.update(shown)
        schedule = schedule_or_none(values["schedule"])
        if schedule is not None and "warmup_epochs" not in schedule.fields:
            # Hidden, and refused by the engine for this schedule (one-cycle has its own
            # warm-up): the box keeps its number for when another schedule is chosen.
            values["warmup_epochs"] = 0.0
        return values

    def showing(self, values: dict[str, Any], widgets: Collection[str]) -> None:
        """``values`` are being put into the form, which has widgets for ``widgets``."""
        self.passthrough = {k: v for k, v in values.items() if k not in widgets}
        self.optimizer_shown = str(values.get("optimizer", self.optimizer_shown))

    def loaded(self, spec: TrainSpec) -> None:
        """A whole recipe was shown: its rate is the person's unless it is a suggestion."""
        self.lr_own = is_own_rate(spec.lr, spec.optimizer)
        self.note = ""

    def rate_typed(self, lr: float, optimizer: str) -> None:
        self.lr_own = is_own_rate(lr, optimizer)

    def optimizer_chosen(self, new: str, lr: float) -> float | None:
        """The rate to put in the box for the optimizer ``new``, or None to keep ``lr``.

        The new optimizer's usual rate replaces a suggested one; a rate of the person's own
        stays, with a note that says what the new optimizer usually starts at.
        """
        old, self.optimizer_shown = self.optimizer_shown, new
        info = optimizer_or_none(new)
        if info is None or old == new:
            return None
        if self.lr_own:
            self.note = (
                f"{info.label} usually starts at a learning rate of {info.default_lr:g}; "
                f"your rate of {lr:g} was kept."
            )
            return None
        return info.default_lr

    def advice(self, spec: TrainSpec, kind: str, gpu_name: str | None) -> str:
        """The note, then what the device makes of the recipe (fp16 on a CPU, say)."""
        lines = [self.note] if self.note else []
        lines += device_warnings(spec.model_dump(), kind, gpu_name)
        return "\n".join(lines)
