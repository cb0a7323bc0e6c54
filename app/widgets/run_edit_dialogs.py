"""The questions the Runs panel asks before it changes runs: a new name, tags, a note, and
whether to delete. Each returns the answer, or None when the person cancelled; the panel
makes the change off the GUI thread (app/store_link.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtWidgets import QInputDialog, QMessageBox, QWidget

from cnn_lab.engine.store import RunRecord

Confirm = Callable[[str, str], bool]


def ask_yes(parent: QWidget) -> Confirm:
    """A yes/cancel question box over ``parent`` (Cancel is the default)."""

    def ask(title: str, text: str) -> bool:
        answer = QMessageBox.question(
            parent,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    return ask


def ask_name(parent: QWidget, record: RunRecord) -> str | None:
    name, ok = QInputDialog.getText(parent, f"Rename run {record.id}", "Name:", text=record.name)
    return name if ok else None


def ask_tags(
    parent: QWidget, record: RunRecord, in_use: Sequence[tuple[str, int]]
) -> list[str] | None:
    """The run's tags as typed (comma-separated), offering the tags in use as a reminder."""
    known = ", ".join(tag for tag, _count in in_use)
    text, ok = QInputDialog.getText(
        parent,
        f"Tags of run {record.id}",
        f"Tags, separated by commas (in use: {known or 'none yet'}):",
        text=", ".join(record.tags),
    )
    return text.split(",") if ok else None


def ask_note(parent: QWidget, record: RunRecord) -> str | None:
    note, ok = QInputDialog.getMultiLineText(
        parent, f"Note on run {record.id}", "Note:", record.note
    )
    return note if ok else None


__all__ = ["Confirm", "ask_name", "ask_note", "ask_tags", "ask_yes"]
