"""Where a run's or a sweep's report goes: the save dialog and its formats.

The report itself is written in the background by ``app/bridge/report_task.py``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

REPORT_FILTERS = {
    "HTML report, charts and images inside (*.html)": "html",
    "PDF report (*.pdf)": "pdf",
    "Every metric as CSV (*.csv)": "csv",
    "Everything as JSON (*.json)": "json",
}


def ask_report_path(parent: QWidget, title: str, suggested: str) -> tuple[str, str] | None:
    """The file and format the person chose, or None when they cancelled."""
    path, chosen = QFileDialog.getSaveFileName(parent, title, suggested, ";;".join(REPORT_FILTERS))
    if not path:
        return None
    fmt = REPORT_FILTERS.get(chosen, "html")
    if not Path(path).suffix:
        path += f".{fmt}"
    return path, fmt
