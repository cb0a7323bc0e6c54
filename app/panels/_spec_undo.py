"""One undo step of a form panel: the spec before and after an edit, and how to show either.

The Data and Hyperparameters panels are forms over one frozen spec each (DatasetSpec,
TrainSpec). An edit is already on screen when it is recorded, so the first ``redo`` (the one
``QUndoStack.push`` makes) does nothing; later undos and redos hand the panel a whole spec to
show, which is exact whatever the edit was. Consecutive edits of one field merge (when nothing
else changed the spec in between), so typing "0.001" or dragging a slider is one step, and a
merge that lands back where it started removes the step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QUndoCommand, QUndoStack

if TYPE_CHECKING:  # not at run time: see data_panel.py on importing pydantic before PySide6
    from pydantic import BaseModel

MERGE_ID = 0x5EC
"""QUndoStack only offers commands with equal ids to ``mergeWith``; the key decides the rest."""


class SpecEdit(QUndoCommand):
    """An edit of a spec: ``show`` puts ``before`` (undo) or ``after`` (redo) on screen."""

    def __init__(
        self,
        before: BaseModel,
        after: BaseModel,
        text: str,
        show: Callable[[Any], None],
        merge_key: str | None = None,
    ) -> None:
        super().__init__(text)
        self.before, self.after = before, after
        self.merge_key = merge_key
        self._show = show
        self._on_screen = True  # pushed after the edit was made: the first redo has no work

    def redo(self) -> None:
        if self._on_screen:
            self._on_screen = False
            return
        self._show(self.after)

    def undo(self) -> None:
        self._show(self.before)

    def id(self) -> int:
        return MERGE_ID if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SpecEdit) or other.merge_key != self.merge_key:
            return False
        if other.before != self.after:
            return False  # something else changed the spec in between (the state, say)
        self.after = other.after
        self.setText(other.text())
        self.setObsolete(self.after == self.before)  # back where it started: no step left
        return True


def changed_fields(before: BaseModel, after: BaseModel) -> list[str]:
    """The fields whose values differ, in the spec's own order."""
    return [
        name for name in type(after).model_fields if getattr(before, name) != getattr(after, name)
    ]


def change_text(
    names: Sequence[str],
    after: BaseModel,
    labels: dict[str, str],
    value_text: Callable[[str, Any], str],
) -> str:
    """``Change Learning rate to 0.01`` for one field, ``Change 3 settings`` for several.

    Qt prefixes "Undo " and "Redo " in menus and tooltips, so the text is the edit itself.
    """
    if len(names) == 1:
        name = names[0]
        return f"Change {labels.get(name, name)} to {value_text(name, getattr(after, name))}"
    return f"Change {len(names)} settings"


def plain_value(value: Any) -> str:
    """A value as a person would type it: 0.001 not 0.0010000, on/off, off for None."""
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def top_edit(stack: QUndoStack) -> SpecEdit | None:
    """The command the next undo would undo, if it is a SpecEdit."""
    index = stack.index()
    command = stack.command(index - 1) if index > 0 else None
    return command if isinstance(command, SpecEdit) else None
