"""The Data panel: choose a source, set preprocessing and augmentation, see what the import found.

Every control change becomes a new DatasetSpec in AppState at once. Changing what the import
depends on (the source, image size, channels, resize policy, the limit) also re-runs the
engine's ``prepare_dataset`` in a cancellable Task, a moment later so that spinning a box does
not start ten imports. Augmentation does not touch the import: it only re-draws the "After
augmentation" grid, computed in the background because the preview imports torch.

Every change made in the controls is one step on ``undo_stack`` (the window's Edit menu
drives it); undoing puts the controls back and behaves as if the person had moved them there,
re-import included. A source the person chose that fails to import (or whose import is
cancelled) is reverted and leaves no step behind. A DatasetSpec set in the state by someone
else (a spec file the window opened, a sweep trial applied) is loaded into the controls and
imported, without an undo step: it is not this panel's edit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from pydantic_core import ValidationError  # not pydantic's: see the note below
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QUndoStack
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.bridge.task import Task
from cnn_lab.app.panels._spec_undo import (
    SpecEdit,
    change_text,
    changed_fields,
    plain_value,
    top_edit,
)
from cnn_lab.app.recent_sources import load_recent_sources, remember_source
from cnn_lab.app.state import AppState
from cnn_lab.app.widgets.augment_controls import AugmentControls, describe_augment_change
from cnn_lab.app.widgets.class_histogram import ClassHistogram
from cnn_lab.app.widgets.image_grid import ClassImageGrid
from cnn_lab.app.widgets.report_view import ReportView
from cnn_lab.app.widgets.task_progress import TaskProgress
from cnn_lab.engine.data.samples import sample_description, sample_names
from cnn_lab.engine.models import InputShape
from cnn_lab.engine.specs import DatasetSpec, explain

# pydantic.ValidationError is pydantic_core's class. Importing it through ``pydantic`` before
# PySide6 leaves pydantic half-loaded when shiboken's import hook inspects modules, and the
# engine's specs then fail to import (seen with ``python -m cnn_lab.app.panels.data_panel``).

SAMPLE_PREFIX = "sample:"
EXAMPLES_PER_CLASS = 4
"""Images per class in the example grid, and the same images in the augmented grid."""
CELL_TARGET = 64
"""Small images are enlarged by a whole factor to about this many pixels on screen..."""
CELL_MAX = 96
"""...and images larger than this are shrunk to it, so a 224 px dataset still fits."""
LEFT_WIDTH = 410
AUTO_CHANNELS = 0
"""The channel box's data for auto (a QComboBox cannot find None among its items)."""
IMPORT_DELAY_MS = 300
PREVIEW_DELAY_MS = 120
FILE_FILTER = (
    "Datasets (*.zip *.tar *.tar.gz *.tgz *.tar.bz2 *.tbz2 *.tar.xz *.txz *.csv *.tsv *.npz);;"
    "Archives (*.zip *.tar *.tar.gz *.tgz *.tar.bz2 *.tbz2 *.tar.xz *.txz);;"
    "CSV of path,label (*.csv *.tsv);;NumPy arrays (*.npz);;All files (*)"
)
LABELS: dict[str, str] = {
    "source": "Source",
    "image_size": "Image size",
    "channels": "Channels",
    "resize": "Resize",
    "limit": "Use at most",
    "val_fraction": "Validation share",
    "test_fraction": "Test share",
    "split_seed": "Split seed",
    "class_balance": "Class balance",
    "augment": "Augmentation",
    "mixup_alpha": "Mixup α",
    "cutmix_alpha": "CutMix α",
}
"""The form's labels, which also name undo steps ("Change Image size to 64")."""
UNDO_NAMES = {**LABELS, "limit": "Image limit"}

HELP: dict[str, str] = {
    "source": "The images to train on: a built-in sample (small, imports in a second, for "
    "trying recipes fast) or a folder, archive, CSV or .npz you opened. Hover a sample for "
    "what it holds.",
    "image_size": "Side of the square images are resized to. Auto keeps small images of one "
    "size as they are and otherwise picks from their sizes, never above 64 px (the report "
    "says why). Larger images can be more accurate but train slower (compute grows with the "
    "square of the side) and take more memory.",
    "channels": "Colour (RGB) or greyscale; auto is greyscale when every image is. Greyscale "
    "stores and reads a third of the data, a little faster, but loses the colour that often "
    "matters for accuracy on photos; fine for digits, scans and X-rays.",
    "resize": "How an image that is not square becomes square. Squashing keeps everything "
    "but distorts shapes; cropping and padding keep shapes. No effect on training speed.",
    "limit": "Train on a stratified subset: faster trials for comparing recipes, lower "
    "accuracy than the whole dataset.",
    "val_fraction": "Share of each class held out to measure validation accuracy: more gives "
    "a steadier accuracy figure, fewer images to train on.",
    "test_fraction": "Share of each class kept back and evaluated once, at the end: an "
    "honest accuracy figure that no choice was tuned on.",
    "split_seed": "Which images land in which split (and in the limited subset).",
    "class_balance": "Counter class imbalance by weighting the loss or sampling: better "
    "accuracy on rare classes, sometimes a little lower overall accuracy. No speed cost.",
}
"""What each preprocessing option does, and what it costs or buys in speed and accuracy."""

CLASS_BALANCE = (
    ("none", "None"),
    ("weighted_loss", "Class-weighted loss"),
    ("weighted_sampler", "Class-weighted sampler"),
)


def _resize_policies() -> list[tuple[str, str]]:
    """(name, label) of each resize policy, from the engine's registry."""
    from cnn_lab.engine.data.resize import resize_policy_label, resize_policy_names

    return [(name, resize_policy_label(name)) for name in resize_policy_names()]


def _shown_source(source: str) -> str:
    if source.startswith(SAMPLE_PREFIX):
        return f"Sample: {source[len(SAMPLE_PREFIX) :]}"
    path = Path(source)
    parent = path.parent.name
    return f"{path.name}  ({parent})" if parent else path.name or source


def _import_key(spec: DatasetSpec) -> tuple[Any, ...]:
    """What ``prepare_dataset``'s result depends on; other fields never need a re-import."""
    return (
        spec.source,
        spec.image_size,
        spec.channels,
        spec.resize,
        spec.limit,
        spec.split_seed if spec.limit is not None else None,
    )


def _augment_key(spec: DatasetSpec) -> tuple[Any, ...]:
    return (tuple((s.name, s.strength) for s in spec.augment), spec.mixup_alpha, spec.cutmix_alpha)


def _augments(spec: DatasetSpec) -> bool:
    return bool(spec.augment) or spec.mixup_alpha > 0 or spec.cutmix_alpha > 0


# ------------------------------------------------------------------------------ background work


@dataclass(frozen=True)
class Imported:
    """What an import hands the panel: the prepared data and the few images it shows."""

    prepared: Any  # PreparedDataset
    examples: np.ndarray
    """Up to EXAMPLES_PER_CLASS images of each class, in class order (a copy, not a memmap)."""
    example_labels: np.ndarray
    counts: list[int]


def import_dataset(spec: DatasetSpec, progress: Any, should_stop: Any) -> Imported:
    """Runs on a worker thread: the engine's import, then the example images picked out."""
    from cnn_lab.engine.data.prepare import prepare_dataset

    prepared = prepare_dataset(spec, progress=progress, should_stop=should_stop)
    labels = np.asarray(prepared.labels)
    picks = [np.flatnonzero(labels == c)[:EXAMPLES_PER_CLASS] for c in range(len(prepared.classes))]
    index = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    counts = np.bincount(labels, minlength=len(prepared.classes)).tolist()
    examples = np.ascontiguousarray(prepared.images[index])
    return Imported(prepared, examples, labels[index], counts)


def augment_examples(
    images: np.ndarray, steps: list[tuple[str, float]], seed: int, mixup: float, cutmix: float
) -> np.ndarray:
    """Runs on a worker thread: the engine's preview imports torch when first called."""
    from cnn_lab.engine.data.augment import preview

    return preview(images, steps, seed, mixup_alpha=mixup, cutmix_alpha=cutmix)


# ------------------------------------------------------------------------------ the panel


class DataPanel(QWidget):
    """Pick a dataset, set how it is prepared and augmented, and see what the import found."""

    title = "Data"

    import_finished = Signal(object)
    """The ImportReport of an import that completed (blockers or not)."""
    import_failed = Signal(str)
    import_cancelled = Signal()
    preview_ready = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.import_task: Task | None = None
        self.preview_task: Task | None = None
        self.report: Any = None  # the last ImportReport shown
        self.imported: Imported | None = None
        self.preview_seed = 0
        self._import_key: tuple[Any, ...] | None = None  # of the import started last
        self._augment_key: tuple[Any, ...] | None = None  # of the preview shown or running
        self._good_source: str | None = None  # the source of the report shown
        self._given_source: str | None = None  # set from the state by someone else: kept
        self._pushed: DatasetSpec = state.dataset  # what this panel last gave the state
        self._pushing = False  # True while this panel updates the state itself
        self._passthrough: dict[str, Any] = {}  # loaded fields no control sets (k-fold's)
        self.undo_stack = QUndoStack(self)
        """This panel's own edits; the window's Edit menu drives it through a QUndoGroup."""

        self._import_timer = QTimer(self, singleShot=True, interval=IMPORT_DELAY_MS)
        self._import_timer.timeout.connect(self._start_import)
        self._preview_timer = QTimer(self, singleShot=True, interval=PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._start_preview)

        self.setAcceptDrops(True)
        controls = QWidget()
        controls_layout = QVBoxLayout(controls)
        controls_layout.setContentsMargins(0, 0, 6, 0)
        controls_layout.setSpacing(4)
        controls_layout.addWidget(self._build_source())
        controls_layout.addWidget(self._build_preprocessing())
        controls_layout.addWidget(self._build_augmentation())
        controls_layout.addStretch(1)
        left = QScrollArea()
        left.setWidget(controls)
        left.setWidgetResizable(True)
        left.setFrameShape(QFrame.Shape.NoFrame)
        left.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left.setFixedWidth(LEFT_WIDTH)

        layout = QHBoxLayout(self)
        layout.addWidget(left)
        layout.addWidget(self._build_results(), 1)

        self._load_spec(state.dataset)
        self._connect_controls()
        self._on_changed(immediate=True, record=False)
        state.changed.connect(self._state_changed)

    # ----------------------------------------------------------------- building

    def _build_source(self) -> QGroupBox:
        self.source = QComboBox()
        self.source.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.source.setMinimumContentsLength(20)
        self.source.setToolTip(HELP["source"])
        for name in sample_names():
            self.source.addItem(f"Sample: {name}", f"{SAMPLE_PREFIX}{name}")
            self.source.setItemData(
                self.source.count() - 1, sample_description(name), Qt.ItemDataRole.ToolTipRole
            )
        for source in load_recent_sources():
            self._add_source_item(source)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: palette(mid);")
        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.setToolTip("A folder with one sub-folder of images per class")
        self.open_folder_button.clicked.connect(self._choose_folder)
        self.open_file_button = QPushButton("Open file…")
        self.open_file_button.setToolTip(
            "A zip or tar archive of class folders, a CSV of path,label, or a NumPy .npz"
        )
        self.open_file_button.clicked.connect(self._choose_file)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_folder_button)
        buttons.addWidget(self.open_file_button)
        box = QGroupBox("Source (or drop a folder or file on this panel)")
        layout = QVBoxLayout(box)
        layout.addWidget(self.source)
        layout.addWidget(self.description)
        layout.addLayout(buttons)
        return box

    def _build_preprocessing(self) -> QGroupBox:
        self.image_size = QSpinBox()
        self.image_size.setRange(0, 1024)
        self.image_size.setSingleStep(8)
        self.image_size.setSpecialValueText("auto")
        self.image_size.setSuffix(" px")
        self.image_size.setToolTip(HELP["image_size"])
        self.channels = QComboBox()
        self.channels.addItem("Auto", AUTO_CHANNELS)
        self.channels.addItem("RGB (3 channels)", 3)
        self.channels.addItem("Greyscale (1 channel)", 1)
        self.channels.setToolTip(HELP["channels"])
        self.resize_policy = QComboBox()
        for name, label in _resize_policies():
            self.resize_policy.addItem(label, name)
        self.resize_policy.setToolTip(HELP["resize"])
        self.resize_policy.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.resize_policy.setMinimumContentsLength(16)
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.05, 0.5)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setToolTip(HELP["val_fraction"])
        self.test_fraction = QDoubleSpinBox()
        self.test_fraction.setRange(0.0, 0.5)
        self.test_fraction.setSingleStep(0.05)
        self.test_fraction.setSpecialValueText("none")
        self.test_fraction.setToolTip(HELP["test_fraction"])
        self.split_seed = QSpinBox()
        self.split_seed.setRange(0, 2**31 - 1)
        self.split_seed.setToolTip(HELP["split_seed"])
        self.limit = QSpinBox()
        self.limit.setRange(0, 10_000_000)
        self.limit.setSpecialValueText("all images")
        self.limit.setSingleStep(500)
        self.limit.setGroupSeparatorShown(True)
        self.limit.setToolTip(HELP["limit"])
        self.class_balance = QComboBox()
        for name, label in CLASS_BALANCE:
            self.class_balance.addItem(label, name)
        self.class_balance.setToolTip(HELP["class_balance"])
        self.split_summary = QLabel()
        self.split_summary.setWordWrap(True)
        self.split_summary.setStyleSheet("color: palette(mid);")
        self.spec_error = QLabel()
        self.spec_error.setWordWrap(True)
        self.spec_error.setStyleSheet("color: #c62828;")
        self.spec_error.setVisible(False)

        form = QFormLayout()
        for name in ("image_size", "channels", "resize", "limit", "val_fraction", "test_fraction",
                     "split_seed"):  # fmt: skip
            self._add_row(form, name)
        form.addRow(self.split_summary)
        self._add_row(form, "class_balance")
        box = QGroupBox("Preprocessing and splits")
        layout = QVBoxLayout(box)
        layout.addLayout(form)
        layout.addWidget(self.spec_error)
        return box

    def _add_row(self, form: QFormLayout, name: str) -> None:
        label = QLabel(LABELS[name])
        label.setToolTip(HELP[name])
        form.addRow(label, self._control(name))

    def _control(self, name: str) -> QWidget:
        """The control that sets DatasetSpec field ``name``."""
        return self.resize_policy if name == "resize" else getattr(self, name)

    def _build_augmentation(self) -> QGroupBox:
        self.augmentation = AugmentControls()
        # Short names for tests and callers: the controls themselves live in the widget.
        self.augment_boxes = self.augmentation.boxes
        self.augment_sliders = self.augmentation.sliders
        self.mixup_alpha = self.augmentation.mixup_alpha
        self.cutmix_alpha = self.augmentation.cutmix_alpha
        return self.augmentation

    def _build_results(self) -> QWidget:
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.progress = TaskProgress(bar_width=220)
        """The import's stage, count and time left (shown while an import runs)."""
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the import; the report below stays as it was")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_import)
        self.retry_button = QPushButton("Import again")
        self.retry_button.setVisible(False)
        self.retry_button.clicked.connect(self.reimport)
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.progress)
        status_row.addWidget(self.cancel_button)
        status_row.addWidget(self.retry_button)

        self.report_view = ReportView()
        report_box = QGroupBox("Import report")
        QVBoxLayout(report_box).addWidget(self.report_view)
        self.histogram = ClassHistogram(title="")
        self.histogram.setMinimumWidth(240)
        histogram_box = QGroupBox("Images per class")
        QVBoxLayout(histogram_box).addWidget(self.histogram)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(report_box)
        top.addWidget(histogram_box)
        top.setSizes([480, 380])

        self.grid = ClassImageGrid(per_class=EXAMPLES_PER_CLASS, scale=2, max_side=CELL_MAX)
        self.examples_box = QGroupBox("Examples")
        QVBoxLayout(self.examples_box).addWidget(_scrolling(self.grid))
        self.augmented_grid = ClassImageGrid(
            per_class=EXAMPLES_PER_CLASS, scale=2, max_side=CELL_MAX
        )
        for grid in (self.grid, self.augmented_grid):
            grid.layout().setContentsMargins(0, 0, 0, 0)
        self.reroll_button = QPushButton("Re-roll")
        self.reroll_button.setToolTip("Draw the random augmentations again with a new seed")
        self.reroll_button.clicked.connect(self.reroll)
        self.preview_status = QLabel()
        self.preview_status.setStyleSheet("color: palette(mid);")
        self.preview_status.setWordWrap(True)  # long on a narrow window: wrap, never widen it
        head = QHBoxLayout()
        head.addWidget(self.preview_status, 1)
        head.addWidget(self.reroll_button)
        self.augmented_box = QGroupBox("After augmentation")
        augmented_layout = QVBoxLayout(self.augmented_box)
        augmented_layout.addLayout(head)
        augmented_layout.addWidget(_scrolling(self.augmented_grid))
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.examples_box)
        bottom.addWidget(self.augmented_box)
        bottom.setSizes([430, 430])

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([330, 370])

        results = QWidget()
        layout = QVBoxLayout(results)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(status_row)
        layout.addWidget(split, 1)
        return results

    def _connect_controls(self) -> None:
        self.source.currentIndexChanged.connect(lambda _: self._on_changed(immediate=True))
        for spin in (
            self.image_size,
            self.limit,
            self.split_seed,
            self.val_fraction,
            self.test_fraction,
        ):
            spin.valueChanged.connect(lambda _: self._on_changed())
        for combo in (self.channels, self.resize_policy, self.class_balance):
            combo.currentIndexChanged.connect(lambda _: self._on_changed())
        self.augmentation.changed.connect(self._on_changed)

    # ----------------------------------------------------------------- spec <-> controls

    def _load_spec(self, spec: DatasetSpec) -> None:
        """Show ``spec`` in the controls, quietly: the caller pushes the spec itself."""
        self._passthrough = {k: v for k, v in spec.model_dump().items() if k not in LABELS}
        blockers = [QSignalBlocker(self._control(name)) for name in LABELS if name != "augment"]
        if self.source.findData(spec.source) < 0:
            self._add_source_item(spec.source)
        self.source.setCurrentIndex(self.source.findData(spec.source))
        self.image_size.setValue(spec.image_size or 0)
        self.channels.setCurrentIndex(self.channels.findData(spec.channels or AUTO_CHANNELS))
        self.resize_policy.setCurrentIndex(max(0, self.resize_policy.findData(spec.resize)))
        self.limit.setValue(spec.limit or 0)
        self.val_fraction.setValue(spec.val_fraction)
        self.test_fraction.setValue(spec.test_fraction)
        self.split_seed.setValue(spec.split_seed)
        self.class_balance.setCurrentIndex(self.class_balance.findData(spec.class_balance))
        self.augmentation.set_from(spec)
        for blocker in blockers:
            blocker.unblock()

    def spec_fields(self) -> dict[str, Any]:
        """The controls as DatasetSpec fields (not yet validated)."""
        limit = self.limit.value() or None
        if limit is not None:
            limit = max(limit, 20)
        return {
            **self._passthrough,
            "source": self.source.currentData() or "",
            "val_fraction": round(self.val_fraction.value(), 4),
            "test_fraction": round(self.test_fraction.value(), 4),
            "split_seed": self.split_seed.value(),
            "limit": limit,
            "image_size": self.image_size.value() or None,
            "channels": self.channels.currentData() or None,
            "resize": self.resize_policy.currentData(),
            **self.augmentation.fields(),
            "class_balance": self.class_balance.currentData(),
        }

    def current_spec(self) -> DatasetSpec | None:
        """The controls as a DatasetSpec; None (with the reason shown) if they do not validate."""
        try:
            spec = DatasetSpec.model_validate(self.spec_fields())
        except ValidationError as exc:
            self.spec_error.setText(explain(exc, what="dataset settings"))
            self.spec_error.setVisible(True)
            return None
        self.spec_error.setVisible(False)
        return spec

    def _on_changed(self, immediate: bool = False, record: bool = True) -> None:
        """Any control moved: push the spec; re-import or re-draw the preview if needed.

        ``record``: the person moved a control, so a new spec is one undo step.
        """
        self._show_source_description()
        spec = self.current_spec()
        if spec is None:
            return
        before = self._pushed
        self._push(spec)
        if record and spec != before:
            self._record(before, spec)
        self._show_split_summary(spec)
        if _import_key(spec) != self._import_key:
            if immediate:
                self._start_import()
            else:
                self._import_timer.start()
        elif self.imported is not None and _augment_key(spec) != self._augment_key:
            self._preview_timer.start()
        self.reroll_button.setEnabled(_augments(spec))

    def _push(self, spec: DatasetSpec) -> None:
        self._pushed = spec
        self._pushing = True
        try:
            self.state.update(dataset=spec)
        finally:
            self._pushing = False

    def _show_spec(self, spec: DatasetSpec, immediate: bool | None = None) -> None:
        """Put ``spec`` in the controls as if the person had moved them there (no undo step).

        The import starts at once for a new source (as choosing one in the combo does),
        otherwise a moment later; ``immediate`` overrides that.
        """
        if immediate is None:
            immediate = spec.source != (self.source.currentData() or "")
        self._load_spec(spec)
        self._on_changed(immediate=immediate, record=False)

    def _state_changed(self) -> None:
        """A DatasetSpec set elsewhere (a spec file, a sweep trial): show it and import it.

        Its source stays even if it fails to import (the status line says why): what the
        window loaded is what Train runs, never silently the source shown before.
        """
        if not self._pushing and self.state.dataset != self._pushed:
            self._given_source = self.state.dataset.source
            self._show_spec(self.state.dataset, immediate=True)

    # ----------------------------------------------------------------- undo

    def _record(self, before: DatasetSpec, after: DatasetSpec) -> None:
        """One undo step; a field's consecutive edits merge (spinning a box is one step)."""
        changed = changed_fields(before, after)
        merge_key: str | None = None
        if "source" in changed:
            self._given_source = None  # the person's own choice from now on
            text = f"Open {_shown_source(after.source)}"
        elif changed == ["augment"]:
            text, merge_key = describe_augment_change(before.augment, after.augment)
        else:
            text = change_text(changed, after, UNDO_NAMES, self._value_text)
            merge_key = changed[0] if len(changed) == 1 else None
        self.undo_stack.push(SpecEdit(before, after, text, self._show_spec, merge_key))

    def _value_text(self, name: str, value: Any) -> str:
        """A field's value as its control shows it: a combo's label, "auto", "all images"."""
        control = self._control(name) if name in LABELS and name != "augment" else None
        if isinstance(control, QComboBox):
            index = control.findData(value)
            return control.itemText(index) if index >= 0 else plain_value(value)
        if isinstance(control, (QSpinBox, QDoubleSpinBox)) and not value:
            return control.specialValueText() or plain_value(value)
        if name == "limit":
            return f"{value:,} images"
        return plain_value(value)

    def _drop_failed_source(self, failed: DatasetSpec, reverted: DatasetSpec) -> None:
        """Keep undo consistent after ``_revert_source``: the failed source leaves no step.

        When the last step opened the source that failed, it is removed (obsolete, then
        undone: its "before" is what the revert already shows). When other edits followed it,
        the revert becomes a step of its own, so the top of the stack is what is shown.
        """
        top = top_edit(self.undo_stack)
        if top is None or top.after != failed:
            return  # not the panel's last step (a reimport, an undo): nothing to take back
        if top.before == reverted:
            top.setObsolete(True)
            self.undo_stack.undo()  # deletes it; showing "before" again changes nothing
        else:
            text = f"Go back to {_shown_source(reverted.source)}"
            self.undo_stack.push(SpecEdit(failed, reverted, text, self._show_spec))

    def _show_source_description(self) -> None:
        source = self.source.currentData() or ""
        if source.startswith(SAMPLE_PREFIX):
            try:
                text = sample_description(source[len(SAMPLE_PREFIX) :])
            except Exception:  # an unknown sample name: the import says so in a sentence
                text = ""
        else:
            text = source
        self.description.setText(text)
        self.description.setToolTip(text)

    def _show_split_summary(self, spec: DatasetSpec) -> None:
        if self.imported is None:
            self.split_summary.setText("")
            return
        n = len(self.imported.prepared)
        val = round(n * spec.val_fraction)
        test = round(n * spec.test_fraction)
        self.split_summary.setText(
            f"Splits: ≈ {n - val - test:,} train · {val:,} validation · {test:,} test"
        )

    # ----------------------------------------------------------------- sources

    def _add_source_item(self, source: str, position: int | None = None) -> int:
        """Add a non-sample source to the combo (after the samples); returns its index."""
        first_path = len(sample_names())
        if self.source.count() == first_path and not source.startswith(SAMPLE_PREFIX):
            self.source.insertSeparator(first_path)
        index = self.source.count() if position is None else position
        self.source.insertItem(index, _shown_source(source), source)
        self.source.setItemData(index, source, Qt.ItemDataRole.ToolTipRole)
        return index

    def open_source(self, path: str) -> None:
        """Import ``path`` (a folder, archive, CSV, .npz, or ``sample:NAME``): one for all ways in.

        The Open buttons and drag-and-drop end here. A source that fails to import leaves
        the previous one selected and its report shown, with the reason in the status line.
        """
        path = path.strip()
        if not path:
            return
        source = (
            path if path.startswith(SAMPLE_PREFIX) else os.path.abspath(os.path.expanduser(path))
        )
        index = self.source.findData(source)
        if index < 0:
            index = self._add_source_item(source, position=len(sample_names()) + 1)
        if index == self.source.currentIndex():
            self.reimport()  # opened again: the files may have changed
        else:
            self.source.setCurrentIndex(index)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of class folders")
        if folder:
            self.open_source(folder)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a dataset file", "", FILE_FILTER)
        if path:
            self.open_source(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()
            self.open_source(urls[0].toLocalFile())

    def _revert_source(self) -> None:
        """After a failed or cancelled import of a new source, go back to the one shown."""
        current = self.source.currentData()
        if self._good_source is None or current in (self._good_source, self._given_source):
            return
        index, failed = self.source.currentIndex(), self._pushed
        self.source.blockSignals(True)
        self.source.setCurrentIndex(self.source.findData(self._good_source))
        if current not in load_recent_sources() and not str(current).startswith(SAMPLE_PREFIX):
            self.source.removeItem(index)
        self.source.blockSignals(False)
        spec = self.current_spec()
        if spec is not None:
            self._import_key = _import_key(spec)
            self._push(spec)
            self._drop_failed_source(failed, spec)
        self._show_source_description()

    # ----------------------------------------------------------------- importing

    def reimport(self) -> None:
        """Run the import again with the current settings (after a cancel, or changed files)."""
        self._import_key = None
        self._start_import()

    def _start_import(self) -> None:
        self._import_timer.stop()
        spec = self.current_spec()
        if spec is None:
            return
        if self.import_task is not None:
            self.import_task.cancel()  # superseded: its result is no longer wanted
        self._import_key = _import_key(spec)
        task = Task(partial(import_dataset, spec), name="import", parent=self)
        self.import_task = task
        task.connect_outcomes(
            progress=partial(self._on_import_progress, task),
            finished=partial(self._on_import_done, task, spec),
            failed=partial(self._on_import_failed, task),
            cancelled=partial(self._on_import_cancelled, task),
        )
        self._set_busy(True, f"Importing {_shown_source(spec.source)}…")
        task.start()

    def cancel_import(self) -> None:
        self._import_timer.stop()
        if self.import_task is not None:
            self.import_task.cancel()
            self.status.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def cancel(self) -> None:
        """Stop every background import and preview, pending or running (the window closes):
        they stop at their next check instead of delivering to a panel that is going away."""
        self._import_timer.stop()
        self._preview_timer.stop()
        for task in (self.import_task, self.preview_task):
            if task is not None:
                task.cancel()

    def _set_busy(self, busy: bool, text: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("")
        if busy:
            self.progress.start("Starting")
        else:
            self.progress.finish()
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        self.retry_button.setVisible(False)

    def _on_import_progress(self, task: Task, stage: str, done: int, total: int) -> None:
        """``Decoding · 120 of 500 · 0:42 left`` beside the bar; the status names the source."""
        if task is not self.import_task:
            return
        self.progress.update_progress(stage, done, total)

    def _on_import_done(self, task: Task, spec: DatasetSpec, imported: Imported) -> None:
        if task is not self.import_task:
            return
        self.import_task = None
        self.imported = imported
        report = imported.prepared.report
        self.report = report
        self._good_source = spec.source
        if not spec.source.startswith(SAMPLE_PREFIX):
            remember_source(spec.source)

        blockers = report.blockers
        self._set_busy(False, "")
        if blockers:
            self.status.setText("This dataset cannot be trained on yet: see the report below.")
            self.status.setStyleSheet("color: #c62828;")
        else:
            seconds = report.cache.build_s
            self.status.setText(
                f"Imported {report.images:,} images in {len(imported.counts)} classes "
                f"({seconds:.1f} s)."
            )
        self.report_view.show_report(report)
        self.histogram.set_counts(report.classes)
        size = int(imported.examples.shape[1]) if imported.examples.ndim == 4 else CELL_TARGET
        scale = max(1, CELL_TARGET // max(size, 1))
        self.grid.scale = self.augmented_grid.scale = scale
        classes = tuple(imported.prepared.classes)
        self.grid.show_images(imported.examples, imported.example_labels, classes, imported.counts)
        self.examples_box.setTitle(f"Examples ({report.image_size}×{report.image_size} px)")
        current = self.current_spec()
        if current is not None:
            self._show_split_summary(current)
        if not report.blockers:
            self.state.set_input_shape(
                InputShape(
                    channels=report.channels,
                    height=report.image_size,
                    width=report.image_size,
                    classes=len(report.classes),
                )
            )
        self.import_finished.emit(report)
        self._start_preview()

    def _on_import_failed(self, task: Task, message: str) -> None:
        if task is not self.import_task:
            return
        self.import_task = None
        self._set_busy(False, f"Could not import: {message}")
        self.status.setStyleSheet("color: #c62828;")
        self.retry_button.setVisible(True)
        self._revert_source()
        self.import_failed.emit(message)

    def _on_import_cancelled(self, task: Task) -> None:
        if task is not self.import_task:
            return
        self.import_task = None
        kept = " The report below is from the previous import." if self.report is not None else ""
        self._set_busy(False, "Import cancelled." + kept)
        self.retry_button.setVisible(True)
        self._revert_source()
        self.import_cancelled.emit()

    # ----------------------------------------------------------------- augmentation preview

    def reroll(self) -> None:
        """Draw the augmentations again with the next seed."""
        self.preview_seed += 1
        self._start_preview()

    def _start_preview(self) -> None:
        self._preview_timer.stop()
        spec = self.current_spec()
        if spec is None or self.imported is None:
            return
        if self.preview_task is not None:
            self.preview_task.cancel()
            self.preview_task = None
        self._augment_key = _augment_key(spec)
        imported = self.imported
        classes = tuple(imported.prepared.classes)
        steps = [(step.name, step.strength) for step in spec.augment]
        if not _augments(spec):
            self.preview_status.setText("No augmentation chosen: the images train as they are.")
            self._show_preview(imported, imported.examples)
            return
        self.preview_status.setText(f"Augmenting (seed {self.preview_seed})…")
        work = partial(
            augment_examples,
            imported.examples,
            steps,
            self.preview_seed,
            spec.mixup_alpha,
            spec.cutmix_alpha,
        )
        task = Task(lambda _progress, _stop: work(), name="preview", parent=self)
        self.preview_task = task
        task.connect_outcomes(
            finished=partial(self._on_preview_done, task, imported, classes),
            failed=partial(self._on_preview_failed, task),
        )
        task.start()

    def _on_preview_done(
        self, task: Task, imported: Imported, classes: tuple[str, ...], images: np.ndarray
    ) -> None:
        if task is not self.preview_task or imported is not self.imported:
            return
        self.preview_task = None
        self.preview_status.setText(f"A random draw (seed {self.preview_seed}).")
        self._show_preview(imported, images)

    def _on_preview_failed(self, task: Task, message: str) -> None:
        if task is not self.preview_task:
            return
        self.preview_task = None
        self.preview_status.setText(f"Could not preview the augmentation: {message}")
        self.preview_ready.emit()

    def _show_preview(self, imported: Imported, images: np.ndarray) -> None:
        classes = tuple(imported.prepared.classes)
        self.augmented_grid.show_images(images, imported.example_labels, classes, imported.counts)
        self.preview_ready.emit()


def _scrolling(widget: QWidget) -> QScrollArea:
    scroll = QScrollArea()
    scroll.setWidget(widget)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    return scroll


if __name__ == "__main__":
    from cnn_lab.app.panels._standalone import run_standalone

    raise SystemExit(run_standalone(DataPanel))
