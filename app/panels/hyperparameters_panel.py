"""The Hyperparameters panel: the training recipe, the speed options, when to stop, and where.

Three columns fit a 1280×800 window without scrolling: the Recipe (optimizer and schedule),
the Device and Speed options (the "Fast defaults" button sits with the device it is for), and
the rest of the recipe, Regularisation, above Stopping. The form scrolls in smaller windows.

Every edit builds a TrainSpec from the widgets. A spec that validates goes to
``AppState.update(train=...)``; one that is refused (a batch smaller than the number of
data-parallel processes, say) shows a sentence under the form and never reaches the state, so
the state only ever holds a valid TrainSpec. Fields that mean nothing for the chosen
optimizer or schedule are hidden (the registries' ``fields`` say which), and the description
under each choice says what it does.

The panel also listens to the state: a TrainSpec set there by someone else (a stored run
loaded by the window, a recommendation applied) is shown with ``load_spec``.

Every change made in the form (a field, "Reset to defaults", "Fast defaults") that gives a new
valid spec is one step on ``undo_stack``, which the window's Edit menu drives. Consecutive
edits of one field merge, so typing a rate is one step. A spec set in the state by someone
else is not this panel's edit and is only shown: undo here undoes this panel's own edits.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic_core import ValidationError  # not pydantic's: see data_panel.py
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.panels._spec_undo import SpecEdit, change_text, changed_fields, plain_value
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.rate_box import ScientificBox
from cnn_lab.engine.monitor.nvml import GpuInventory, gpu_inventory
from cnn_lab.engine.specs import TrainSpec
from cnn_lab.engine.specs.base import clean_message
from cnn_lab.engine.train.optimizers import optimizer_info, optimizer_names
from cnn_lab.engine.train.presets import describe_fast_defaults, device_warnings, fast_defaults
from cnn_lab.engine.train.schedules import schedule_info, schedule_names

ERROR_STYLE = "color: #c62828;"
NOTE_STYLE = "color: palette(mid);"
ADVICE_STYLE = "color: #9a6700;"

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
}

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
}

OPTIMIZER_FIELDS = ("momentum", "nesterov", "weight_decay")
"""The fields an optimizer's registry entry may claim; the others are hidden for it."""
SCHEDULE_FIELDS = ("warmup_epochs", "lr_decay", "plateau_patience")
"""The Recipe fields a schedule's registry entry may claim (monitor and min_delta stay in
Stopping and are always shown, because early stopping and the best checkpoint use them too)."""


# ---------------------------------------------------------------------------- small widgets


def _bounds(name: str, open_step: float) -> tuple[float, float]:
    """The inclusive range TrainSpec allows for ``name``; open bounds move in by ``open_step``."""
    low, high = 0.0, float(2**31 - 1)
    for item in TrainSpec.model_fields[name].metadata:
        if isinstance(item, Ge):
            low = float(item.ge)
        elif isinstance(item, Gt):
            low = float(item.gt) + open_step
        elif isinstance(item, Le):
            high = float(item.le)
        elif isinstance(item, Lt):
            high = float(item.lt) - open_step
    return low, min(high, float(2**31 - 1))


def _int_box(name: str, suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    low, high = _bounds(name, 1)
    box.setRange(int(low), int(high))
    box.setSuffix(suffix)
    return box


def _next_125(value: float, up: bool, smallest: float) -> float:
    """The next value up or down on the 1-2-5 grid (…, 1e-3, 2e-3, 5e-3, 1e-2, …)."""
    if value <= 0:
        return smallest if up else 0.0
    exponent = math.floor(math.log10(value) + 1e-12)
    mantissa = value / 10**exponent
    if up:
        step = next(m for m in (1, 2, 5, 10) if m > mantissa * (1 + 1e-9))
    else:
        step = next(m for m in (5, 2, 1, 0.5) if m < mantissa * (1 - 1e-9))
    result = float(f"{step * 10**exponent:.12g}")
    return 0.0 if not up and result < smallest * (1 - 1e-9) else result


class NumberBox(ScientificBox):
    """A float spin box that writes 0.0003 or 5e-05 rather than 0.000300, and reads 3e-4.

    With ``log_steps`` the arrows move along 1, 2, 5 × 10^k, which is how learning rates and
    weight decays are searched; a linear step would take a hundred clicks from 1e-4 to 1e-2.
    """

    def __init__(self, name: str, *, step: float = 0.1, log_steps: bool = False) -> None:
        super().__init__()
        self.setDecimals(12)
        low, high = _bounds(name, 1e-6)
        self.setRange(low, high)
        self.setSingleStep(step)
        self._log_steps = log_steps
        self._smallest = max(low, 1e-6)

    def stepBy(self, steps: int) -> None:
        if not self._log_steps:
            super().stepBy(steps)
            return
        value = self.value()
        for _ in range(abs(steps)):
            value = _next_125(value, steps > 0, self._smallest)
        self.setValue(value)


class OptionalBox(QWidget):
    """A check box that switches a number on or off: ``value()`` is None while unticked.

    The number is kept while unticked, so ticking again brings back the last value used.
    """

    changed = Signal()

    def __init__(self, box: QAbstractSpinBox, default: float, text: str = "") -> None:
        super().__init__()
        self.check = QCheckBox(text)
        self.box = box
        box.setValue(default)  # type: ignore[attr-defined]
        box.setEnabled(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.check)
        layout.addWidget(box, 1)
        self.check.toggled.connect(self._toggled)
        box.valueChanged.connect(self._value_changed)  # type: ignore[attr-defined]

    def value(self) -> float | int | None:
        return self.box.value() if self.check.isChecked() else None  # type: ignore[attr-defined]

    def set_value(self, value: float | None) -> None:
        if value is not None:
            self.box.setValue(value)  # type: ignore[attr-defined]
        self.check.setChecked(value is not None)

    def _toggled(self, on: bool) -> None:
        self.box.setEnabled(on)
        self.changed.emit()

    def _value_changed(self) -> None:
        if self.check.isChecked():
            self.changed.emit()


class Choice(QComboBox):
    """A combo box of (label, value) items whose values may be any Python value (None too).

    String values are also stored as item data, so ``findData("cpu")`` works as on any combo.
    """

    def __init__(self, items: Iterable[tuple[str, Any]] = ()) -> None:
        super().__init__()
        # Long labels (the schedules') must not widen the column; the popup shows them whole.
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(14)
        self._values: list[Any] = []
        for label, value in items:
            self.add(label, value)

    def add(self, label: str, value: Any, tooltip: str = "") -> None:
        self.addItem(label, value if isinstance(value, str) else None)
        self._values.append(value)
        if tooltip:
            self.setItemData(self.count() - 1, tooltip, Qt.ItemDataRole.ToolTipRole)

    def value(self) -> Any:
        index = self.currentIndex()
        return self._values[index] if 0 <= index < len(self._values) else None

    def label_of(self, value: Any) -> str | None:
        """The label shown for ``value`` (for undo texts), None if this combo lacks it."""
        index = self._index_of(value)
        return self.itemText(index) if index >= 0 else None

    def _index_of(self, value: Any) -> int:
        for index, known in enumerate(self._values):
            if known is value or (type(known) is type(value) and known == value):
                return index
        return -1

    def set_value(self, value: Any, missing_label: str | None = None) -> None:
        """Select ``value``; one this combo does not list is added (e.g. from a stored run)."""
        index = self._index_of(value)
        if index >= 0:
            self.setCurrentIndex(index)
            return
        self.add(missing_label or str(value), value)
        self.setCurrentIndex(self.count() - 1)


def _set_help(widget: QWidget, text: str) -> None:
    """The tooltip on a field's widget, and on the check and number of an OptionalBox too
    (each is hovered on its own, and a form label only explains the row's own widget)."""
    widget.setToolTip(text)
    if isinstance(widget, OptionalBox):
        widget.check.setToolTip(text)
        widget.box.setToolTip(text)


@dataclass(frozen=True)
class _Field:
    """How the panel reads and writes one TrainSpec field's widget."""

    widget: QWidget
    get: Callable[[], Any]
    put: Callable[[Any], None]
    changed: Any  # the widget's signal for "the person changed this"


def _description_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(NOTE_STYLE)
    # Top-aligned: a form may give a wrapped label more height than its text needs, and
    # centred text would then float away from the field it describes.
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


# ---------------------------------------------------------------------------- the panel


class HyperparametersPanel(QWidget):
    """The training recipe as a form; every valid edit becomes ``state.train``.

    Learning-rate policy: choosing another optimizer puts its registry ``default_lr`` into the
    learning-rate box unless the rate there is the person's own, i.e. neither the previous
    optimizer's suggestion nor TrainSpec's default. A rate someone typed (or loaded from a
    tuned run) is never overwritten: a note says what the new optimizer usually starts at.
    """

    title = "Hyperparameters"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.inventory: GpuInventory = gpu_inventory()
        self._loading = False  # True while widgets are set from a spec, not by the person
        self._pushing = False  # True while this panel updates the state itself
        self._pushed: TrainSpec = state.train
        self._note = ""  # a one-off remark (the rate kept, the defaults applied)
        self._passthrough: dict[str, Any] = {}  # loaded values of fields the form lacks
        self._lr_own = False
        self._optimizer_shown = state.train.optimizer
        self.undo_stack = QUndoStack(self)
        """This panel's own edits; the window's Edit menu drives it through a QUndoGroup."""

        self._make_widgets()
        self._fields = self._field_table()
        self._build_layout()
        for name, field in self._fields.items():
            field.changed.connect(lambda *_, name=name: self._edited(name))
        self.fast_button.clicked.connect(self.apply_fast_defaults)
        self.reset_button.clicked.connect(self.reset)
        self.state.changed.connect(self._state_changed)
        self.load_spec(state.train)

    # ------------------------------------------------------------------ widgets

    def _make_widgets(self) -> None:
        self._make_recipe_widgets()
        self._make_speed_widgets()
        self._make_stopping_widgets()
        self.device = Choice([("Automatic (GPU if present)", "auto"), ("CPU", "cpu")])
        if sys.platform == "darwin":
            self.device.add("Apple GPU (MPS)", "mps")
        gpus = self.inventory.gpus
        if len(gpus) > 1:
            self.device.add(f"All {len(gpus)} GPUs (for data parallel)", "cuda")
        for gpu in gpus:
            self.device.add(f"cuda:{gpu.index}: {gpu.name}", f"cuda:{gpu.index}")
        self.gpu_status = _description_label()
        self.gpu_status.setText(self.inventory.message)
        self.fast_button = QPushButton()
        self.reset_button = QPushButton("Reset to defaults")
        self.reset_button.setToolTip("Put every field back to TrainSpec's defaults.")
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(ERROR_STYLE)
        self.advice = QLabel()
        self.advice.setWordWrap(True)
        self.advice.setStyleSheet(ADVICE_STYLE)

    def _make_recipe_widgets(self) -> None:
        self.epochs = _int_box("epochs")
        self.batch_size = _int_box("batch_size")
        self.lr = NumberBox("lr", log_steps=True)
        self.optimizer = Choice()
        for name in optimizer_names():
            info = optimizer_info(name)
            self.optimizer.add(info.label, name, info.description)
        self.optimizer_note = _description_label()
        self.momentum = NumberBox("momentum", step=0.05)
        self.nesterov = QCheckBox("Look ahead along the momentum")
        self.weight_decay = NumberBox("weight_decay", log_steps=True)
        self.schedule = Choice()
        for name in schedule_names():
            info = schedule_info(name)
            self.schedule.add(info.label, name, info.description)
        self.schedule_note = _description_label()
        self.warmup_epochs = NumberBox("warmup_epochs", step=0.5)
        self.lr_decay = NumberBox("lr_decay", step=0.05)
        self.plateau_patience = _int_box("plateau_patience", " epochs")
        self.label_smoothing = NumberBox("label_smoothing", step=0.05)
        self.grad_clip = OptionalBox(NumberBox("grad_clip", step=0.5), 1.0, "clip norm at")
        self.ema_decay = OptionalBox(NumberBox("ema_decay", step=0.0005), 0.999, "decay")
        self.tta_flip = QCheckBox("Average with the mirror image")
        self.seed = _int_box("seed")

    def _make_speed_widgets(self) -> None:
        self.precision = Choice()
        self.precision.add("fp32 (full precision)", "fp32", "The reference: slowest on GPUs.")
        self.precision.add("bf16 mixed precision", "bf16", "Ampere+ GPUs and AMX CPUs.")
        self.precision.add("fp16 mixed precision", "fp16", "Any NVIDIA GPU; not the CPU.")
        self.channels_last = QCheckBox("Channels-last (NHWC)")
        self.cudnn_benchmark = Choice(
            [("Automatic (on for CUDA)", None), ("On", True), ("Off", False)]
        )
        self.compile = QCheckBox("Compile the model")
        self.deterministic = QCheckBox("Bit-exact runs and resumes")
        self.fused_optimizer = Choice(
            [
                ("Automatic (fused where possible)", "auto"),
                ("Fused", "fused"),
                ("Foreach", "foreach"),
                ("Off (one tensor at a time)", "off"),
            ]
        )
        self.grad_accumulation = _int_box("grad_accumulation")
        self.world_size = _int_box("world_size")
        self.effective_batch = _description_label()

    def _make_stopping_widgets(self) -> None:
        self.max_steps = OptionalBox(_int_box("max_steps", " steps"), 100, "stop after")
        self.early_stopping = OptionalBox(_int_box("early_stopping", " epochs"), 5, "patience")
        self.monitor = Choice(
            [("Validation accuracy", "val.accuracy"), ("Validation loss", "val.loss")]
        )
        self.min_delta = NumberBox("min_delta", step=0.001)

    def _field_table(self) -> dict[str, _Field]:
        """Every TrainSpec field with its widget: how to read it, set it, and hear changes."""
        fields: dict[str, _Field] = {}
        for name in TrainSpec.model_fields:
            widget = getattr(self, name, None)
            if not isinstance(widget, QWidget):
                continue  # a field newer than this form: values() passes it through unchanged
            if isinstance(widget, Choice):
                field = _Field(widget, widget.value, widget.set_value, widget.currentIndexChanged)
            elif isinstance(widget, OptionalBox):
                field = _Field(widget, widget.value, widget.set_value, widget.changed)
            elif isinstance(widget, QCheckBox):
                field = _Field(widget, widget.isChecked, widget.setChecked, widget.toggled)
            else:
                field = _Field(widget, widget.value, widget.setValue, widget.valueChanged)
            if name in HELP:
                _set_help(widget, HELP[name])
            fields[name] = field
        return fields

    # ------------------------------------------------------------------ layout

    def _form(self, names: Iterable[str]) -> QFormLayout:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for name in names:
            self._add_row(form, name)
        return form

    def _add_row(self, form: QFormLayout, name: str) -> None:
        label = QLabel(LABELS[name])
        label.setToolTip(HELP.get(name, ""))
        form.addRow(label, getattr(self, name))
        note = {"optimizer": self.optimizer_note, "schedule": self.schedule_note}.get(name)
        if note is not None:
            form.addRow(note)  # spans the form: fewer lines than under the field alone

    def _group(self, title: str, form: QFormLayout, *extra: QWidget) -> QGroupBox:
        box = QGroupBox(title)
        layout = QVBoxLayout(box)
        layout.addLayout(form)
        for widget in extra:
            layout.addWidget(widget)
        return box

    def _build_layout(self) -> None:
        self.recipe_form = self._form(
            ("epochs", "batch_size", "lr", "optimizer", "momentum", "nesterov", "weight_decay",
             "schedule", "warmup_epochs", "lr_decay", "plateau_patience")
        )  # fmt: skip
        self.regularisation_form = self._form(
            ("label_smoothing", "grad_clip", "ema_decay", "tta_flip")
        )
        self.device_form = self._form(("device",))
        self.device_form.addRow("", self.gpu_status)
        self._add_row(self.device_form, "seed")
        self.speed_form = self._form(
            ("precision", "channels_last", "cudnn_benchmark", "compile", "deterministic",
             "fused_optimizer", "grad_accumulation", "world_size")
        )  # fmt: skip
        self.speed_form.addRow("", self.effective_batch)
        self.stopping_form = self._form(("max_steps", "early_stopping", "monitor", "min_delta"))

        columns = QHBoxLayout()
        columns.addLayout(self._column(self._group("Recipe", self.recipe_form)), 1)
        device_box = self._group("Device and seed", self.device_form, self.fast_button)
        speed_box = self._group("Speed", self.speed_form)
        columns.addLayout(self._column(device_box, speed_box), 1)
        regularisation_box = self._group("Regularisation", self.regularisation_form)
        stopping_box = self._group("Stopping", self.stopping_form)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.reset_button)
        right = self._column(regularisation_box, stopping_box, self.problem, self.advice)
        right.addLayout(buttons)
        columns.addLayout(right, 1)

        content = QWidget()
        content.setLayout(columns)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

    @staticmethod
    def _column(*widgets: QWidget) -> QVBoxLayout:
        column = QVBoxLayout()
        for widget in widgets:
            column.addWidget(widget)
        column.addStretch(1)
        return column

    # ------------------------------------------------------------------ reading and writing

    def values(self) -> dict[str, Any]:
        """The TrainSpec fields as the form shows them (not yet validated)."""
        values = dict(self._passthrough)
        values.update((name, field.get()) for name, field in self._fields.items())
        schedule = self._schedule_info(values["schedule"])
        if schedule is not None and "warmup_epochs" not in schedule.fields:
            # Hidden, and refused by the engine for this schedule (one-cycle has its own
            # warm-up): the box keeps its number for when another schedule is chosen.
            values["warmup_epochs"] = 0.0
        return values

    def load_spec(self, spec: TrainSpec) -> None:
        """Show ``spec`` in the form (a stored run's recipe, say) and make it the state's.

        Not an undo step: undo and redo come through here themselves, and a spec from
        elsewhere is not this panel's edit.
        """
        self._load(spec)

    def _load(self, spec: TrainSpec, undo_text: str | None = None) -> None:
        self._show(spec.model_dump())
        self._lr_own = self._is_own_rate(spec.lr, spec.optimizer)
        self._note = ""
        self._push(undo_text=undo_text)

    def reset(self) -> None:
        """Every field back to TrainSpec's defaults (one undo step)."""
        self._load(TrainSpec(), undo_text="Reset to defaults")

    def apply_fast_defaults(self) -> None:
        """Merge the fast settings for the device chosen in the device box into the form."""
        kind, gpu_name = self.device_target()
        values = self.values()
        values.update(fast_defaults(kind, gpu_name))
        self._show(values)
        label = self._device_label()
        self._note = f"Applied the fast defaults for {label}."
        self._push(undo_text=f"Apply fast defaults for {label}")

    def device_target(self) -> tuple[str, str | None]:
        """(kind, GPU name) of the device chosen: automatic is the first GPU if any, else CPU."""
        device = str(self.device.value())
        gpus = self.inventory.gpus
        if device in ("cpu", "mps"):
            return device, None
        if device == "auto":
            return ("cuda", gpus[0].name) if gpus else ("cpu", None)
        index = int(device.split(":", 1)[1]) if ":" in device else None
        names = [gpu.name for gpu in gpus if index is None or gpu.index == index]
        return "cuda", names[0] if names else None

    def _device_label(self) -> str:
        kind, gpu_name = self.device_target()
        if kind == "cuda":
            return gpu_name or "the CUDA GPU"
        return {"cpu": "CPU", "mps": "Apple GPU"}[kind]

    def _show(self, values: dict[str, Any]) -> None:
        self._passthrough = {k: v for k, v in values.items() if k not in self._fields}
        self._loading = True
        try:
            for name, field in self._fields.items():
                if name in values:
                    self._put(name, field, values[name])
        finally:
            self._loading = False
        self._optimizer_shown = str(self.optimizer.value())
        self._refresh()

    def _put(self, name: str, field: _Field, value: Any) -> None:
        if name == "device":
            self.device.set_value(value, f"{value} (not on this machine)")
        elif isinstance(field.widget, Choice):
            field.widget.set_value(value, f"{value} (unknown here)")
        else:
            field.put(value)

    # ------------------------------------------------------------------ edits

    def _edited(self, name: str) -> None:
        if self._loading:
            return
        self._note = ""
        if name == "optimizer":
            self._optimizer_changed(str(self.optimizer.value()))
        elif name == "lr":
            self._lr_own = self._is_own_rate(self.lr.value(), str(self.optimizer.value()))
        self._refresh()
        self._push(edited=name)

    def _optimizer_changed(self, new: str) -> None:
        """Offer the new optimizer's usual rate (see the class docstring for when it is set)."""
        old, self._optimizer_shown = self._optimizer_shown, new
        info = self._optimizer_info(new)
        if info is None or old == new:
            return
        if self._lr_own:
            self._note = (
                f"{info.label} usually starts at a learning rate of {info.default_lr:g}; "
                f"your rate of {self.lr.value():g} was kept."
            )
            return
        self._loading = True
        try:
            self.lr.setValue(info.default_lr)
        finally:
            self._loading = False

    def _is_own_rate(self, lr: float, optimizer: str) -> bool:
        """Whether ``lr`` is the person's choice rather than a suggestion the form put there."""
        info = self._optimizer_info(optimizer)
        suggested = [TrainSpec.model_fields["lr"].default]
        if info is not None:
            suggested.append(info.default_lr)
        return not any(math.isclose(lr, s, rel_tol=1e-9) for s in suggested)

    def _push(self, *, edited: str | None = None, undo_text: str | None = None) -> None:
        """Validate the form; a valid recipe becomes ``state.train``, a refused one a sentence.

        ``edited`` (the field the person changed) or ``undo_text`` (a whole-form change) make
        a new recipe one undo step; without either it is shown and pushed, not recorded.
        """
        try:
            spec = TrainSpec(**self.values())
        except ValidationError as error:
            self._show_problem(_sentences(error))
            return
        problem = _form_problem(spec)
        if problem:
            self._show_problem(problem)
            return
        self._show_problem("")
        before, self._pushed = self._pushed, spec
        if (edited or undo_text) and spec != before:
            self._record(before, spec, edited, undo_text)
        if spec != self.state.train:
            self._pushing = True
            try:
                self.state.update(train=spec)
            finally:
                self._pushing = False
        self._show_advice(spec)

    def _state_changed(self) -> None:
        if not self._pushing and self.state.train != self._pushed:
            self.load_spec(self.state.train)  # set elsewhere, e.g. from a stored run

    # ------------------------------------------------------------------ undo

    def _record(
        self, before: TrainSpec, after: TrainSpec, edited: str | None, text: str | None
    ) -> None:
        """One undo step; a field's consecutive edits merge (typing "0.001" is one step)."""
        merge_key = None
        if text is None:
            changed = changed_fields(before, after)
            # The field the person touched names the step, even when the form moved another
            # with it (a new optimizer brings its usual rate).
            names = [edited] if edited in changed else changed
            text = change_text(names, after, LABELS, self._value_text)
            merge_key = edited
        self.undo_stack.push(SpecEdit(before, after, text, self.load_spec, merge_key))

    def _value_text(self, name: str, value: Any) -> str:
        """A field's value as the form shows it: a choice's label, "off" for an unticked box."""
        widget = self._fields[name].widget if name in self._fields else None
        if isinstance(widget, Choice):
            label = widget.label_of(value)
            if label is not None:
                return label
        return plain_value(value)

    # ------------------------------------------------------------------ what is shown

    def _refresh(self) -> None:
        """Show the fields that mean something for the chosen optimizer and schedule."""
        optimizer = self._optimizer_info(str(self.optimizer.value()))
        used = optimizer.fields if optimizer is not None else OPTIMIZER_FIELDS
        for name in OPTIMIZER_FIELDS:
            self.recipe_form.setRowVisible(getattr(self, name), name in used)
        self.optimizer_note.setText(optimizer.description if optimizer else "")
        schedule = self._schedule_info(str(self.schedule.value()))
        used = schedule.fields if schedule is not None else SCHEDULE_FIELDS
        for name in SCHEDULE_FIELDS:
            self.recipe_form.setRowVisible(getattr(self, name), name in used)
        self.schedule_note.setText(schedule.description if schedule else "")
        label = self._device_label()
        kind, gpu_name = self.device_target()
        self.fast_button.setText(f"Fast defaults for {label}")
        self.fast_button.setToolTip(describe_fast_defaults(kind, gpu_name))
        self._show_effective_batch()

    def _show_effective_batch(self) -> None:
        batch, steps = self.batch_size.value(), self.grad_accumulation.value()
        processes = self.world_size.value()
        text = f"Effective batch: {batch * steps} images per optimizer step"
        if 1 < processes <= batch:
            text += f", {batch // processes} per process"
        self.effective_batch.setText(text + ".")

    def _show_problem(self, text: str) -> None:
        if text:
            text += " Until it is fixed, Train uses the last valid recipe."
        self.problem.setText(text)
        self.problem.setVisible(bool(text))

    def _show_advice(self, spec: TrainSpec) -> None:
        kind, gpu_name = self.device_target()
        lines = [self._note] if self._note else []
        lines += device_warnings(spec.model_dump(), kind, gpu_name)
        self.advice.setText("\n".join(lines))
        self.advice.setVisible(bool(lines))

    @staticmethod
    def _optimizer_info(name: str) -> Any:
        try:
            return optimizer_info(name)
        except KeyError:
            return None

    @staticmethod
    def _schedule_info(name: str) -> Any:
        try:
            return schedule_info(name)
        except KeyError:
            return None


def _sentences(error: ValidationError) -> str:
    """What is wrong with the form, in sentences that use the form's labels."""
    sentences = []
    for item in error.errors(include_url=False):
        message = clean_message(str(item.get("msg", "is not valid")))
        loc = item.get("loc", ())
        if loc:
            sentences.append(f"{LABELS.get(str(loc[0]), str(loc[0]))}: {message}.")
        else:
            sentences.append(message[:1].upper() + message[1:] + ".")
    return " ".join(sentences)


def _form_problem(spec: TrainSpec) -> str:
    """A combination the engine refuses when training starts, caught while editing."""
    if spec.warmup_epochs > 0 and spec.warmup_epochs >= spec.epochs:
        return (
            f"The warm-up ({spec.warmup_epochs:g} epochs) is as long as the whole run "
            f"({spec.epochs} epochs): make it a small part of training, such as 1 epoch."
        )
    return ""


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(HyperparametersPanel))
