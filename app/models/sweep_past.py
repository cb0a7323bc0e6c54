"""The past sweeps a run database lists, and what can be done with the one chosen.

A past sweep can be opened (its results read back and shown) whenever the Sweep panel's
results side is free: no sweep running, none being opened. Only an unfinished one whose
study is beside the database can be resumed (``SavedSweep.unfinished``): resuming one whose
study is gone would start the study afresh.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnn_lab.engine.search.history import SavedSweep


@dataclass(frozen=True)
class SavedButtons:
    """Whether the chooser and its Open and Resume buttons can be used."""

    chooser: bool
    open: bool
    resume: bool


class PastSweeps:
    """The database's sweeps, newest first, as the chooser lists them."""

    def __init__(self) -> None:
        self.saved: list[SavedSweep] = []

    def replace(self, saved: list[SavedSweep], chosen: SavedSweep | None) -> int:
        """Take a fresh list; the index to choose: the one chosen before if still listed,
        else the newest (-1 when the list is empty)."""
        self.saved = saved
        names = [s.name for s in saved]
        if chosen is not None and chosen.name in names:
            return names.index(chosen.name)
        return 0 if names else -1

    def chosen(self, index: int) -> SavedSweep | None:
        return self.saved[index] if 0 <= index < len(self.saved) else None

    def buttons(self, index: int, *, busy: bool) -> SavedButtons:
        """Open needs a sweep and a free results side (not ``busy``); Resume an unfinished one."""
        chosen = self.chosen(index)
        return SavedButtons(
            chooser=bool(self.saved),
            open=chosen is not None and not busy,
            resume=chosen is not None and chosen.unfinished and not busy,
        )
