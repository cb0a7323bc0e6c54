"""What an import found: a summary line, the warnings (blockers first) and the skipped files."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHeaderView,
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cnn_lab.engine.util.formatting import format_bytes

if TYPE_CHECKING:
    from cnn_lab.engine.data.report import Finding, ImportReport

BLOCKER_COLOUR = "#c62828"
WARNING_COLOUR = "#b26a00"
HINT_COLOUR = "#666666"
BLOCKER_PREFIX = "Blocks training:"
MAX_SKIPPED_ROWS = 2000
"""A table of a million skipped files helps nobody and is slow to fill; the count is exact."""


def _counts(counts: dict[str, int], most: int = 4) -> str:
    shown = [f"{name} {n:,}" for name, n in list(counts.items())[:most]]
    if len(counts) > most:
        shown.append(f"{len(counts) - most} more")
    return ", ".join(shown) or "none"


def summary_text(report: ImportReport) -> str:
    """The report's facts as one paragraph of plain text."""
    present = sum(1 for n in report.classes.values() if n > 0)
    channels = "RGB" if report.channels == 3 else "greyscale"
    lines = [
        f"{report.images:,} images in {present} classes, prepared as "
        f"{report.image_size}×{report.image_size} {channels} ({report.resize.replace('_', ' ')})."
    ]
    if report.preprocess_reason:  # what auto chose and why, e.g. "28 px, 1 channel (auto): …"
        lines.append(f"Size and channels: {report.preprocess_reason}")
    facts = []
    s = report.sizes
    if s.max_width:
        if (s.min_width, s.min_height) == (s.max_width, s.max_height):
            facts.append(f"Originals {s.max_width}×{s.max_height}")
        else:
            facts.append(
                f"Originals {s.min_width}×{s.min_height} to {s.max_width}×{s.max_height} "
                f"(median {s.median_width:.0f}×{s.median_height:.0f})"
            )
    if report.formats:
        facts.append(f"formats {_counts(report.formats)}")
    if report.modes:
        facts.append(f"modes {_counts(report.modes)}")
    if facts:
        lines.append("; ".join(facts) + ".")
    cache = report.cache
    if cache.reused and not cache.decoded:
        done = f"All {cache.reused:,} taken from the cache in {cache.build_s:.1f} s"
    elif cache.reused:
        done = (
            f"{cache.decoded:,} decoded, {cache.reused:,} taken from the cache, "
            f"in {cache.build_s:.1f} s"
        )
    else:
        done = f"{cache.decoded:,} decoded in {cache.build_s:.1f} s"
    if cache.bytes:
        done += f"; {format_bytes(cache.bytes)} prepared"
    lines.append(done + ".")
    return "\n".join(lines)


def finding_line(finding: Finding) -> str:
    """One finding as plain text, blockers marked the way the panel shows them."""
    prefix = f"{BLOCKER_PREFIX} " if finding.severity == "blocker" else "Warning: "
    hint = f" {finding.hint}" if finding.hint else ""
    return prefix + finding.message + hint


def _finding_html(finding: Finding) -> str:
    blocker = finding.severity == "blocker"
    colour = BLOCKER_COLOUR if blocker else WARNING_COLOUR
    label = BLOCKER_PREFIX if blocker else "Warning:"
    hint = (
        f"<br><span style='color:{HINT_COLOUR}'>{html.escape(finding.hint)}</span>"
        if finding.hint
        else ""
    )
    return (
        f"<p style='margin:0 0 6px 0'><b style='color:{colour}'>{label}</b> "
        f"{html.escape(finding.message)}{hint}</p>"
    )


class ReportView(QWidget):
    """Shows an ImportReport; ``show_report`` replaces whatever was there."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: ImportReport | None = None
        self.summary = QLabel("No dataset imported yet.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.findings = QLabel()
        self.findings.setWordWrap(True)
        self.findings.setTextFormat(Qt.TextFormat.RichText)
        self.findings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.skipped_label = QLabel()
        self.skipped_label.setWordWrap(True)
        self.skipped_table = QTableWidget(0, 2)
        self.skipped_table.setHorizontalHeaderLabels(["File", "Why it was skipped"])
        self.skipped_table.verticalHeader().setVisible(False)
        self.skipped_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.skipped_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.skipped_table.setAlternatingRowColors(True)
        self.skipped_table.setWordWrap(False)
        header = self.skipped_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.skipped_table.setMinimumHeight(80)

        # The summary and findings scroll together; the table scrolls on its own below them.
        text = QWidget()
        text_layout = QVBoxLayout(text)
        text_layout.setContentsMargins(0, 0, 4, 0)
        text_layout.addWidget(self.summary)
        text_layout.addWidget(self.findings)
        text_layout.addStretch(1)
        self.text_scroll = QScrollArea()
        self.text_scroll.setWidget(text)
        self.text_scroll.setWidgetResizable(True)
        self.text_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.text_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text_scroll, 3)
        layout.addWidget(self.skipped_label)
        layout.addWidget(self.skipped_table, 2)
        self.clear()

    def clear(self) -> None:
        self.report = None
        self.summary.setText("No dataset imported yet.")
        self.findings.setText("")
        self.findings.setVisible(False)
        self.skipped_table.setRowCount(0)
        self.skipped_label.setVisible(False)
        self.skipped_table.setVisible(False)

    def show_report(self, report: ImportReport) -> None:
        self.report = report
        self.summary.setText(summary_text(report))
        ordered = sorted(report.warnings, key=lambda f: f.severity != "blocker")
        if ordered:
            self.findings.setText("".join(_finding_html(f) for f in ordered))
        else:
            self.findings.setText(f"<span style='color:{HINT_COLOUR}'>No problems found.</span>")
        self.findings.setVisible(True)

        skipped = report.skipped
        self.skipped_table.setRowCount(min(len(skipped), MAX_SKIPPED_ROWS))
        for row, item in enumerate(skipped[:MAX_SKIPPED_ROWS]):
            path = QTableWidgetItem(item.path)
            path.setToolTip(item.path)
            reason = QTableWidgetItem(item.reason)
            reason.setToolTip(item.reason)
            self.skipped_table.setItem(row, 0, path)
            self.skipped_table.setItem(row, 1, reason)
        if skipped:
            reasons = report.skipped_reasons()
            kinds = ", ".join(f"{n} {why}" for why, n in reasons.most_common(3))
            more = "" if len(reasons) <= 3 else ", …"
            first = (
                f"; the first {MAX_SKIPPED_ROWS:,} are listed"
                if len(skipped) > MAX_SKIPPED_ROWS
                else ""
            )
            self.skipped_label.setText(
                f"<b>{len(skipped):,} file{'s' if len(skipped) != 1 else ''} skipped</b> "
                f"({html.escape(kinds)}{more}){first}"
            )
            self.skipped_table.resizeColumnToContents(0)
            self.skipped_table.setColumnWidth(0, min(self.skipped_table.columnWidth(0), 320))
        self.skipped_label.setVisible(bool(skipped))
        self.skipped_table.setVisible(bool(skipped))

    # ----------------------------------------------------------------- for tests and reports

    def finding_lines(self) -> list[str]:
        """The findings shown, as plain text, blockers first."""
        if self.report is None:
            return []
        ordered = sorted(self.report.warnings, key=lambda f: f.severity != "blocker")
        return [finding_line(f) for f in ordered]

    def skipped_rows(self) -> list[tuple[str, str]]:
        table = self.skipped_table
        return [(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount())]
