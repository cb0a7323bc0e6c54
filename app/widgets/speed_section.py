"""The Tune panel's speed-advisor box: each option's measured speed-up and one Apply button.

The table lists every option the advisor timed, kept or not, because "compile made it
slower here" is as useful to know as "bf16 made it 1.9× faster". Apply puts in exactly the
advisor's ``changes``, the combination it measured as fastest.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from cnn_lab.app.widgets.tuner_section import (
    ADVICE_STYLE,
    HEADLINE_STYLE,
    TunerSection,
    note_label,
)

ABOUT = (
    "Speed advisor: times a few training steps with your current settings, then with each "
    "speed option (precision, memory layout, cuDNN benchmark, torch.compile, optimizer "
    "kernels, data placement), and recommends the fastest combination that keeps the loss "
    "finite. Costs a few seconds per option on a GPU, longer on the CPU; compile can take "
    "minutes."
)
EMPTY_TEXT = "No advice yet: Run measures which speed options make training faster on this device."
COLUMNS = ("Option", "Value", "Images/s", "Speed-up", "Kept", "Note")


def format_value(value: Any) -> str:
    """An option's value as the Hyperparameters panel would put it."""
    if value is None:
        return "automatic"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def format_changes(changes: dict[str, Any]) -> str:
    return ", ".join(f"{field} = {format_value(value)}" for field, value in changes.items())


def summary(result: dict[str, Any]) -> str:
    """ "1.85× faster: 1,234 → 2,283 images/s on cuda:0", or that nothing beat the baseline."""
    base = (result.get("baseline") or {}).get("images_per_s")
    best = (result.get("best") or {}).get("images_per_s")
    speedup = result.get("speedup")
    device = result.get("device") or "this device"
    if not isinstance(base, (int, float)) or not isinstance(best, (int, float)):
        return f"No speed could be measured on {device}."
    if not result.get("changes") or not isinstance(speedup, (int, float)):
        return f"No change beats your settings: {base:,.0f} images/s on {device}."
    return f"{speedup:.2f}× faster: {base:,.0f} → {best:,.0f} images/s on {device}"


def _cell(text: str, *, number: bool = False, bold: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if number:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if bold:
        font = item.font()
        font.setBold(True)
        item.setFont(font)
    return item


class SpeedSection(TunerSection):
    """The speed advisor's findings table, overall speed-up, warnings and Apply button."""

    kind = "speed"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Speed advisor", ABOUT, parent)
        self.steps = QSpinBox()
        self.steps.setRange(2, 200)
        self.steps.setValue(8)
        self.add_field(
            "Timed steps per option",
            self.steps,
            "Steps timed for each option after a short warm-up: more steps give steadier "
            "figures and take longer.",
        )
        self.headline = note_label(EMPTY_TEXT)
        self.message = note_label(style="")  # the tuner's own sentence: full contrast
        self.message.setVisible(False)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setWordWrap(False)
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(6 * rows.defaultSectionSize())
        self.table.setVisible(False)
        self.warnings = note_label(style=ADVICE_STYLE)
        self.warnings.setVisible(False)
        self.apply_button = QPushButton()
        self.apply_button.setVisible(False)
        self.apply_button.clicked.connect(self._apply)
        apply_row = QHBoxLayout()
        apply_row.addWidget(self.warnings, 1)
        apply_row.addWidget(self.apply_button, 0, Qt.AlignmentFlag.AlignRight)
        self.body.addWidget(self.headline)
        self.body.addWidget(self.message)
        self.body.addWidget(self.table, 1)
        self.body.addStretch(0)
        self.body.addLayout(apply_row)
        self.changes: dict[str, Any] = {}

    def options(self) -> dict[str, Any] | None:
        return {"steps": self.steps.value()}

    def _show_result(self, result: dict[str, Any]) -> None:
        self.changes = dict(result.get("changes") or {})
        self.headline.setText(summary(result))
        self.headline.setStyleSheet(HEADLINE_STYLE)
        message = result.get("message") or ""
        self.message.setText(message)
        self.message.setVisible(bool(message))
        findings = result.get("findings") or []
        self.table.setRowCount(len(findings))
        for row, finding in enumerate(findings):
            self._fill_row(row, finding)
        self.table.setVisible(bool(findings))
        warnings = result.get("warnings") or []
        self.warnings.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warnings.setVisible(bool(warnings))
        n = len(self.changes)
        self.apply_button.setText(f"Apply {n} change{'s' if n != 1 else ''}")
        self.apply_button.setToolTip(
            f"Put {format_changes(self.changes)} into the Hyperparameters." if n else ""
        )
        self.apply_button.setVisible(n > 0)

    def _fill_row(self, row: int, finding: dict[str, Any]) -> None:
        speed, speedup = finding.get("images_per_s"), finding.get("speedup")
        kept = bool(finding.get("accepted"))
        cells = (
            _cell(str(finding.get("option", "")), bold=kept),
            _cell(format_value(finding.get("value")), bold=kept),
            _cell(f"{speed:,.0f}" if speed is not None else "—", number=True),
            _cell(f"{speedup:.2f}×" if speedup is not None else "—", number=True, bold=kept),
            _cell("✓" if kept else ""),
            _cell(str(finding.get("note") or "")),
        )
        for column, item in enumerate(cells):
            if column == len(cells) - 1:
                item.setToolTip(item.text())  # long notes are cut by the column
            self.table.setItem(row, column, item)

    def _apply(self) -> None:
        if self.changes:
            self.apply_requested.emit(dict(self.changes))
