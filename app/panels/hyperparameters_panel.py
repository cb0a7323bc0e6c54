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

import sys
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.models import hyperparameters_form as rules
from cnn_lab.app.models.hyperparameters_form import HELP, LABELS, HyperparametersForm
from cnn_lab.app.panels._spec_undo import SpecEdit, change_text, changed_fields, plain_value
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.field_inputs import (
    Choice,
    FieldInput,
    NumberBox,
    OptionalBox,
    SubSpecBox,
    field_input,
    int_box,
    note_label,
    say,
    sentence_label,
    set_help,
)
from cnn_lab.engine.monitor.nvml import GpuInventory, gpu_inventory
from cnn_lab.engine.specs import TrainSpec
from cnn_lab.engine.specs.train import FineTuneSpec
from cnn_lab.engine.train.presets import describe_fast_defaults, fast_defaults

FIELDS = TrainSpec.model_fields
TUNE = FineTuneSpec.model_fields
ERROR_STYLE = "color: #c62828;"
ADVICE_STYLE = "color: #9a6700;"


class HyperparametersPanel(QWidget):
    """The training recipe as a form; every valid edit becomes ``state.train``.

    The rules (the learning rate it suggests, which fields show, the recipe the fields make)
    are ``HyperparametersForm``'s, in app/models/hyperparameters_form.py.
    """

    title = "Hyperparameters"

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.inventory: GpuInventory = gpu_inventory()
        self._loading = False  # True while widgets are set from a spec, not by the person
        self._pushing = False  # True while this panel updates the state itself
        self.form = HyperparametersForm(state.train)
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
        self.device = Choice(rules.device_choices(self.inventory.gpus, sys.platform))
        self.gpu_status = note_label()
        self.gpu_status.setText(self.inventory.message)
        self.fast_button = QPushButton()
        self.reset_button = QPushButton("Reset to defaults")
        self.reset_button.setToolTip("Put every field back to TrainSpec's defaults.")
        self.problem, self.advice = sentence_label(ERROR_STYLE), sentence_label(ADVICE_STYLE)

    def _make_recipe_widgets(self) -> None:
        self.epochs = int_box(FIELDS["epochs"])
        self.batch_size = int_box(FIELDS["batch_size"])
        self.lr = NumberBox(FIELDS["lr"], log_steps=True)
        self.optimizer = Choice(rules.optimizer_choices())
        self.optimizer_note = note_label()
        self.momentum = NumberBox(FIELDS["momentum"], step=0.05)
        self.nesterov = QCheckBox("Look ahead along the momentum")
        self.weight_decay = NumberBox(FIELDS["weight_decay"], log_steps=True)
        self.schedule = Choice(rules.schedule_choices())
        self.schedule_note = note_label()
        self.warmup_epochs = NumberBox(FIELDS["warmup_epochs"], step=0.5)
        self.lr_decay = NumberBox(FIELDS["lr_decay"], step=0.05)
        self.plateau_patience = int_box(FIELDS["plateau_patience"], " epochs")
        self.label_smoothing = NumberBox(FIELDS["label_smoothing"], step=0.05)
        self.grad_clip = OptionalBox(NumberBox(FIELDS["grad_clip"], step=0.5), 1.0, "clip norm at")
        self.ema_decay = OptionalBox(NumberBox(FIELDS["ema_decay"], step=0.0005), 0.999, "decay")
        self.tta_flip = QCheckBox("Average with the mirror image")
        self.seed = int_box(FIELDS["seed"])
        self.fine_tune = SubSpecBox.of_fields(TUNE, rules.FINE_TUNE_HELP, rules.FINE_TUNE_CHOICES)

    def _make_speed_widgets(self) -> None:
        self.precision = Choice(rules.CHOICES["precision"])
        self.channels_last = QCheckBox("Channels-last (NHWC)")
        self.cudnn_benchmark = Choice(rules.CHOICES["cudnn_benchmark"])
        self.compile = QCheckBox("Compile the model")
        self.deterministic = QCheckBox("Bit-exact runs and resumes")
        self.fused_optimizer = Choice(rules.CHOICES["fused_optimizer"])
        self.grad_accumulation = int_box(FIELDS["grad_accumulation"])
        self.world_size = int_box(FIELDS["world_size"])
        self.effective_batch = note_label()

    def _make_stopping_widgets(self) -> None:
        self.max_steps = OptionalBox(int_box(FIELDS["max_steps"], " steps"), 100, "stop after")
        self.early_stopping = OptionalBox(
            int_box(FIELDS["early_stopping"], " epochs"), 5, "patience"
        )
        self.monitor = Choice(rules.CHOICES["monitor"])
        self.min_delta = NumberBox(FIELDS["min_delta"], step=0.001)

    def _field_table(self) -> dict[str, FieldInput]:
        """Every TrainSpec field with its widget: how to read it, set it, and hear changes."""
        fields: dict[str, FieldInput] = {}
        for name in TrainSpec.model_fields:
            widget = getattr(self, name, None)
            if not isinstance(widget, QWidget):
                continue  # a field newer than this form: values() passes it through unchanged
            if name in HELP:
                set_help(widget, HELP[name])
            fields[name] = field_input(widget)
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
        fine_tune_box = self._group("Fine-tuning", QFormLayout(), self.fine_tune)
        columns.addLayout(self._column(self._group("Recipe", self.recipe_form), fine_tune_box), 1)
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
        return self.form.values({name: field.get() for name, field in self._fields.items()})

    def load_spec(self, spec: TrainSpec) -> None:
        """Show ``spec`` in the form (a stored run's recipe, say) and make it the state's.

        Not an undo step: undo and redo come through here themselves, and a spec from
        elsewhere is not this panel's edit.
        """
        self._load(spec)

    def _load(self, spec: TrainSpec, undo_text: str | None = None) -> None:
        self._show(spec.model_dump())
        self.form.loaded(spec)
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
        label = rules.device_label(kind, gpu_name)
        self.form.note = f"Applied the fast defaults for {label}."
        self._push(undo_text=f"Apply fast defaults for {label}")

    def device_target(self) -> tuple[str, str | None]:
        """(kind, GPU name) of the device chosen: automatic is the first GPU if any, else CPU."""
        return rules.device_target(str(self.device.value()), self.inventory.gpus)

    def _show(self, values: dict[str, Any]) -> None:
        self.form.showing(values, self._fields)
        self._loading = True
        try:
            for name, field in self._fields.items():
                if name in values:
                    self._put(name, field, values[name])
        finally:
            self._loading = False
        self._refresh()

    def _put(self, name: str, field: FieldInput, value: Any) -> None:
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
        self.form.note = ""
        if name == "optimizer":
            self._optimizer_changed(str(self.optimizer.value()))
        elif name == "lr":
            self.form.rate_typed(self.lr.value(), str(self.optimizer.value()))
        self._refresh()
        self._push(edited=name)

    def _optimizer_changed(self, new: str) -> None:
        """Put in the new optimizer's usual rate, unless the rate is the person's own."""
        rate = self.form.optimizer_chosen(new, self.lr.value())
        if rate is None:
            return
        self._loading = True
        try:
            self.lr.setValue(rate)
        finally:
            self._loading = False

    def _push(self, *, edited: str | None = None, undo_text: str | None = None) -> None:
        """Validate the form; a valid recipe becomes ``state.train``, a refused one a sentence.

        ``edited`` (the field the person changed) or ``undo_text`` (a whole-form change) make
        a new recipe one undo step; without either it is shown and pushed, not recorded.
        """
        spec, problem = rules.check(self.values())
        say(self.problem, rules.problem_text(problem))
        if spec is None:
            return
        before, self.form.pushed = self.form.pushed, spec
        if (edited or undo_text) and spec != before:
            self._record(before, spec, edited, undo_text)
        if spec != self.state.train:
            self._pushing = True
            try:
                self.state.update(train=spec)
            finally:
                self._pushing = False
        say(self.advice, self.form.advice(spec, *self.device_target()))
        self.fine_tune.show_note(rules.fine_tune_text(spec, self.state.architecture))

    def _state_changed(self) -> None:
        if not self._pushing and self.state.train != self.form.pushed:
            self.load_spec(self.state.train)  # set elsewhere, e.g. from a stored run
        # The architecture decides whether automatic fine-tuning is on.
        self.fine_tune.show_note(rules.fine_tune_text(self.form.pushed, self.state.architecture))

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
        if isinstance(widget, SubSpecBox):
            return rules.fine_tune_value_text(value)
        if isinstance(widget, Choice):
            label = widget.label_of(value)
            if label is not None:
                return label
        return plain_value(value)

    # ------------------------------------------------------------------ what is shown

    def _refresh(self) -> None:
        """Show the fields that mean something for the chosen optimizer and schedule."""
        values = self.values()
        optimizer, schedule = str(values["optimizer"]), str(values["schedule"])
        for name, visible in rules.visible_fields(optimizer, schedule).items():
            self.recipe_form.setRowVisible(getattr(self, name), visible)
        self.optimizer_note.setText(rules.description(rules.optimizer_or_none(optimizer)))
        self.schedule_note.setText(rules.description(rules.schedule_or_none(schedule)))
        kind, gpu_name = self.device_target()
        self.fast_button.setText(f"Fast defaults for {rules.device_label(kind, gpu_name)}")
        self.fast_button.setToolTip(describe_fast_defaults(kind, gpu_name))
        self.effective_batch.setText(rules.effective_batch_text(values))


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(HyperparametersPanel))
