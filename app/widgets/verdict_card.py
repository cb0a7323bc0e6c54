"""The bottleneck verdict card: what limits this run's speed, the numbers, and what to try.

It shows ``engine`` diagnosis dicts (``BottleneckReport.diagnosis``, also stored as a run's
``summary["bottleneck"]``) as they are: the engine decides, the card only presents. Every
string from the engine goes into plain-text labels, so a reason or a path with ``<`` in it
can never turn into markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.app.widgets.plain_label import plain_label
from cnn_lab.engine.specs import TrainSpec


@dataclass(frozen=True)
class VerdictStyle:
    """How one verdict reads: its name on the card and its colour."""

    label: str
    color: str


VERDICTS: dict[str, VerdictStyle] = {
    "input-bound": VerdictStyle("Input-bound", "#d35400"),
    "host-bound": VerdictStyle("Host-bound", "#c0392b"),
    "memory-bound": VerdictStyle("Memory-bound", "#8e44ad"),
    "compute-bound": VerdictStyle("Compute-bound", "#2e86de"),
    "balanced": VerdictStyle("Balanced", "#27ae60"),
    "warming-up": VerdictStyle("Warming up", "#7f8c8d"),
}
UNKNOWN = VerdictStyle("", "#7f8c8d")
WAITING = "No diagnosis yet: it appears once the run has taken enough steps to measure."


def verdict_style(verdict: str) -> VerdictStyle:
    """The style of a verdict; an unknown one (a newer engine) shows its own name in grey."""
    style = VERDICTS.get(verdict)
    if style is not None:
        return style
    return VerdictStyle(verdict.replace("-", " ").capitalize() or "Unknown", UNKNOWN.color)


def _format_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:,.3g}" if isinstance(value, float) else f"{value:,}"


def applicable(option: Any, value: Any) -> bool:
    """Whether a recommendation names a TrainSpec field the person could set with one click."""
    return isinstance(option, str) and option in TrainSpec.model_fields and value is not None


class VerdictCard(QFrame):
    """The verdict in colour, the evidence sentences and the recommendations.

    ``apply_requested`` carries ``{field: value}`` for a recommendation's Apply button; the
    card changes nothing itself (the window decides whether and where to apply it).
    """

    apply_requested = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("verdict-card")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.diagnosis: dict[str, Any] = {}
        self._buttons: list[QPushButton] = []
        self._recommendation_labels: list[QLabel] = []
        self._recommendations: list[Any] = []

        caption = plain_label("BOTTLENECK", selectable=False)
        caption.setStyleSheet("color: palette(mid); font-size: 8pt; letter-spacing: 1px;")
        self.verdict_label = plain_label(selectable=False)
        font = self.verdict_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.verdict_label.setFont(font)
        self.title_label = plain_label(WAITING)
        self.evidence_header = plain_label("Evidence", selectable=False)
        self.evidence_label = plain_label()
        self.recommendations_header = plain_label("What to try", selectable=False)
        for header in (self.evidence_header, self.recommendations_header):
            bold = header.font()
            bold.setBold(True)
            header.setFont(bold)
        self.recommendations_box = QVBoxLayout()
        self.recommendations_box.setSpacing(4)
        self.steps_label = plain_label(selectable=False)
        self.steps_label.setStyleSheet("color: palette(mid);")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 10, 10)
        layout.setSpacing(6)
        for widget in (caption, self.verdict_label, self.title_label):
            layout.addWidget(widget)
        layout.addWidget(self.evidence_header)
        layout.addWidget(self.evidence_label)
        layout.addWidget(self.recommendations_header)
        layout.addLayout(self.recommendations_box)
        layout.addWidget(self.steps_label)
        self.clear()

    # ------------------------------------------------------------------ content

    def clear(self) -> None:
        """Back to "no diagnosis yet"."""
        self.diagnosis = {}
        self._paint(UNKNOWN.color)
        self.verdict_label.setText("—")
        self.title_label.setText(WAITING)
        self._set_evidence([])
        self._set_recommendations([])
        self.steps_label.setText("")

    def set_diagnosis(self, diagnosis: dict[str, Any]) -> None:
        """Show a diagnosis dict; missing keys are shown as absent, never as errors."""
        if not diagnosis:
            self.clear()
            return
        if diagnosis == self.diagnosis:
            return  # the same report again (it is re-sent each window): nothing to redo
        self.diagnosis = dict(diagnosis)
        style = verdict_style(str(diagnosis.get("verdict", "")))
        self._paint(style.color)
        self.verdict_label.setText(style.label)
        title = str(diagnosis.get("title", ""))
        head, colon, rest = title.partition(": ")
        if colon and head.lower() == style.label.lower():  # the verdict is shown just above
            title = rest[:1].upper() + rest[1:]
        self.title_label.setText(title)
        evidence = [str(s) for s in diagnosis.get("evidence_text") or []]
        if not evidence:  # an engine that sent numbers only: show them as they are
            numbers = diagnosis.get("evidence") or {}
            evidence = [f"{name}: {_format_number(value)}" for name, value in numbers.items()]
        self._set_evidence(evidence)
        recommendations = list(diagnosis.get("recommendations") or [])
        if recommendations != self._recommendations:  # rebuilding rows costs a relayout
            self._set_recommendations(recommendations)
        steps = diagnosis.get("steps")
        self.steps_label.setText(
            f"Measured over {steps:,} steps." if isinstance(steps, int) else ""
        )

    def verdict(self) -> str:
        return str(self.diagnosis.get("verdict", ""))

    def recommendation_texts(self) -> list[str]:
        """The recommendations' sentences as shown."""
        return [label.text() for label in self._recommendation_labels]

    # ------------------------------------------------------------------ pieces

    def _paint(self, color: str) -> None:
        self.setStyleSheet(
            f"#verdict-card {{ border: 1px solid {color}; border-left: 6px solid {color};"
            f" border-radius: 4px; }}"
        )
        self.verdict_label.setStyleSheet(f"color: {color};")

    def _set_evidence(self, sentences: list[str]) -> None:
        self.evidence_label.setText("\n".join(f"• {s}" for s in sentences))
        self.evidence_header.setVisible(bool(sentences))
        self.evidence_label.setVisible(bool(sentences))

    def _set_recommendations(self, recommendations: list[Any]) -> None:
        while self.recommendations_box.count():
            item = self.recommendations_box.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.hide()  # until deleted it would still be drawn where it was
                widget.deleteLater()
        self._recommendations = recommendations
        self._recommendation_labels = []
        self._buttons = []
        for rec in recommendations:
            if not isinstance(rec, dict):
                rec = {"text": str(rec)}
            self.recommendations_box.addWidget(self._recommendation_row(rec))
        self.recommendations_header.setVisible(bool(recommendations))

    def _recommendation_row(self, rec: dict[str, Any]) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        label = plain_label(f"• {rec.get('text', '')}")
        self._recommendation_labels.append(label)
        layout.addWidget(label, 1)
        option, value = rec.get("option"), rec.get("value")
        if applicable(option, value):
            button = QPushButton("Apply")
            button.setToolTip(f"Set {option} = {value!r} in the Hyperparameters panel.")
            button.clicked.connect(lambda _=False, o=option, v=value: self._apply(o, v))
            self._buttons.append(button)
            layout.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)
        return row

    def _apply(self, option: str, value: Any) -> None:
        self.apply_requested.emit({option: value})

    def apply_buttons(self) -> list[QPushButton]:
        """The Apply buttons now shown, in recommendation order."""
        return list(self._buttons)
