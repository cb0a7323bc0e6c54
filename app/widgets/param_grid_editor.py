"""The grid editor: which RunSpec fields a sweep varies, and the values each one takes.

One row per parameter. A row takes either typed values ("0.01, 0.03, 0.1"; words such as
"adamw, sgd" become choices) or a range (low, high, how many steps, log or linear). A range
with steps becomes that many values, so every strategy, the grid included, can use it; a
range with 0 steps stays continuous, for the random and TPE strategies to sample.

The editor only reads text; ``params`` turns it into ParamSpecs against the base spec's
document, so an integer field (batch size, depth) gets whole numbers and every mistake is
one sentence (a ``UserError``) the panel shows beside the Launch button.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.search.spec import ParamSpec, RangeSpec

COMMON_PATHS: tuple[str, ...] = (
    "train.lr",
    "train.batch_size",
    "train.weight_decay",
    "train.optimizer",
    "train.epochs",
    "architecture.width",
    "architecture.depth",
    "architecture.dropout",
    "train.precision",
    "train.label_smoothing",
)
"""The fields people sweep most; the picker is editable, so any other path can be typed."""

VALUES, RANGE = "values", "range"
COLUMNS = ("Parameter", "Set as", "Values", "Low", "High", "Steps", "Log")
WORDS: dict[str, Any] = {"true": True, "false": False, "none": None}


def parse_value(text: str) -> Any:
    """One typed value: an int, a float, true/false/none, or the word itself."""
    word = text.strip()
    if word.lower() in WORDS:
        return WORDS[word.lower()]
    for kind in (int, float):
        try:
            return kind(word)
        except ValueError:
            continue
    return word


def parse_values(path: str, text: str) -> list[Any]:
    """A comma-separated list; refuses an empty one with a sentence naming the field."""
    values = [parse_value(part) for part in text.split(",") if part.strip()]
    if not values:
        raise UserError(
            f"{path} has no values.", hint="Type them separated by commas, such as 0.01, 0.1."
        )
    return values


def range_values(low: float, high: float, steps: int, *, log: bool, integer: bool) -> list[Any]:
    """``steps`` points from low to high, evenly spaced (geometrically on a log scale).

    Rounded to four significant figures so a trial reads "lr=0.003162", and to whole
    numbers for an integer field (duplicates dropped, since 2 and 2.4 are both batch 2).
    """
    if steps == 1:
        points = [low]
    elif log:
        ratio = (high / low) ** (1 / (steps - 1))
        points = [low * ratio**i for i in range(steps)]
    else:
        points = [low + (high - low) * i / (steps - 1) for i in range(steps)]
    if integer:
        return list(dict.fromkeys(round(p) for p in points))
    return [float(f"{p:.4g}") for p in points]


def _is_integer(document: dict[str, Any], path: str) -> bool:
    """Whether the base spec holds a whole number at ``path`` (so values are rounded)."""
    node: Any = document
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return isinstance(node, int) and not isinstance(node, bool)


class _Row:
    """The widgets of one parameter row, kept together so the editor can read them back."""

    def __init__(self, path: str) -> None:
        self.path = QComboBox()
        self.path.setEditable(True)
        self.path.addItems(COMMON_PATHS)
        self.path.setCurrentText(path)
        self.mode = QComboBox()
        self.mode.addItems([VALUES, RANGE])
        self.values = QLineEdit()
        self.values.setPlaceholderText("0.01, 0.03, 0.1")
        self.low = QLineEdit()
        self.low.setPlaceholderText("low")
        self.high = QLineEdit()
        self.high.setPlaceholderText("high")
        self.steps = QSpinBox()
        self.steps.setRange(0, 100)
        self.steps.setValue(3)
        self.steps.setSpecialValueText("any")  # 0: a continuous range, sampled
        self.steps.setToolTip("How many values the range is cut into; 'any' samples freely")
        self.log = QCheckBox()
        self.log.setToolTip("Space the values on a log scale (for rates and decays)")
        self.path.setToolTip(
            "The recipe field this row varies, as a dotted path (train.lr, train.batch_size, "
            "architecture.width…); pick a common one or type another"
        )
        self.mode.setToolTip(
            "values: try exactly the values listed. range: from low to high, cut into Steps "
            "values (or sampled freely at 'any'). A grid runs every combination, so each "
            "extra value multiplies its trials"
        )
        self.values.setToolTip(
            "The values to try, separated by commas: numbers, words (adamw) or true/false"
        )
        self.low.setToolTip("The smallest value of the range")
        self.high.setToolTip("The largest value of the range")
        self.mode.currentTextChanged.connect(self.sync)
        self.sync()

    def widgets(self) -> list[QWidget]:
        return [self.path, self.mode, self.values, self.low, self.high, self.steps, self.log]

    def sync(self) -> None:
        """Enable the fields of the chosen way of giving values, grey out the others."""
        ranged = self.mode.currentText() == RANGE
        self.values.setEnabled(not ranged)
        for widget in (self.low, self.high, self.steps, self.log):
            widget.setEnabled(ranged)

    def param(self, document: dict[str, Any]) -> ParamSpec:
        path = self.path.currentText().strip()
        if not path:
            raise UserError("A parameter row has no field.", hint="Pick one, such as train.lr.")
        integer = _is_integer(document, path)
        if self.mode.currentText() == VALUES:
            values = parse_values(path, self.values.text())
            if integer and all(isinstance(v, float) and v.is_integer() for v in values):
                values = [int(v) for v in values]
            if all(isinstance(v, str | bool) or v is None for v in values):
                return _param(path, choices=tuple(values))
            return _param(path, values=tuple(values))
        low, high = (self._number(path, w) for w in (self.low, self.high))
        log, steps = self.log.isChecked(), self.steps.value()
        if log and (low <= 0 or high <= 0):
            raise UserError(
                f"The log range of {path} must be above 0.", hint="Give a low such as 1e-4."
            )
        if low > high:
            raise UserError(f"The range of {path} runs backwards.", hint="Put the low first.")
        if steps:
            return _param(
                path, values=tuple(range_values(low, high, steps, log=log, integer=integer))
            )
        if integer:
            low, high = math.ceil(low), math.floor(high)
        return _param(path, range=RangeSpec(low=low, high=high, log=log, integer=integer))

    @staticmethod
    def _number(path: str, field: QLineEdit) -> float:
        try:
            return float(field.text())
        except ValueError:
            name = field.placeholderText()
            raise UserError(
                f"The {name} of {path} is not a number.", hint="Type a number such as 0.001."
            ) from None


def _param(path: str, **how: Any) -> ParamSpec:
    """A ParamSpec, its validation error turned into the spec's own sentence."""
    from pydantic import ValidationError

    try:
        return ParamSpec(path=path, **how)
    except ValidationError as exc:
        message = str(exc.errors()[0].get("msg", exc)).removeprefix("Value error, ")
        raise UserError(f"{message}.", hint="Correct the row and launch again.") from None


class ParamGridEditor(QWidget):
    """The table of searched parameters, with Add and Remove; ``changed`` on every edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.picker = QComboBox()
        self.picker.setEditable(True)
        self.picker.addItems(COMMON_PATHS)
        self.picker.setToolTip("The field to vary: pick a common one or type a dotted path")
        self.add_button = QPushButton("Add parameter")
        self.add_button.clicked.connect(lambda: self.add_row(self.picker.currentText()))
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected parameter rows")
        self.remove_button.clicked.connect(self.remove_selected)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        for column, width in enumerate((160, 76, 0, 64, 64, 56, 34)):
            if width:
                self.table.setColumnWidth(column, width)
        self.rows: list[_Row] = []

        buttons = QHBoxLayout()
        buttons.addWidget(self.picker, 1)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)

    def add_row(self, path: str) -> _Row:
        """Add a parameter row for ``path``; focus its values so typing goes there."""
        row = _Row(path.strip())
        index = self.table.rowCount()
        self.table.insertRow(index)
        for column, widget in enumerate(row.widgets()):
            self.table.setCellWidget(index, column, widget)
        self.rows.append(row)
        row.path.currentTextChanged.connect(self.changed)
        row.mode.currentTextChanged.connect(self.changed)
        for field in (row.values, row.low, row.high):
            field.textChanged.connect(self.changed)
        row.steps.valueChanged.connect(self.changed)
        row.log.toggled.connect(self.changed)
        row.values.setFocus()
        self.changed.emit()
        return row

    def remove_selected(self) -> None:
        for index in sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(index)
            del self.rows[index]
        self.changed.emit()

    def params(self, document: dict[str, Any]) -> tuple[ParamSpec, ...]:
        """The rows as ParamSpecs for a base spec dumped to ``document``; UserError if not."""
        if not self.rows:
            raise UserError("The sweep has no parameters.", hint="Add one with Add parameter.")
        return tuple(row.param(document) for row in self.rows)


__all__ = ["COMMON_PATHS", "ParamGridEditor", "parse_value", "range_values"]
