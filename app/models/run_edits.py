"""The Runs panel's changes to runs (rename, tags, note, archive, delete), each made on the
store's thread through the window's store link and followed by a fresh listing.

Plain Python: the link's ``call`` is passed in, so these rules (what a delete asks first,
what it says after) are tested without a window, and the panel keeps only its widgets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cnn_lab.app.models.runs_selection import delete_question
from cnn_lab.engine.store.run_files import delete_runs, run_files

Call = Callable[..., None]
"""``StoreLink.call``: ``call(work, done, failed, what=...)``."""


class RunEdits:
    """Changes to runs; ``changed`` lists again after each, ``say`` shows a refusal or what a
    delete did."""

    def __init__(self, call: Call, *, changed: Callable[[], None], say: Callable[[str], None]):
        self._call = call
        self._changed = changed
        self._say = say

    def _act(self, work: Callable[[Any], Any], done: Callable[[Any], None] | None = None) -> None:
        """One change off the GUI thread, then the list again; a refusal (a locked store, a
        run deleted meanwhile) is said."""

        def made(result: Any) -> None:
            if done is not None:
                done(result)
            self._changed()

        self._call(work, made, self._say, what="a change to the runs")

    def rename(self, run_id: int, name: str) -> None:
        self._act(lambda store: store.rename_run(run_id, name))

    def set_tags(self, run_id: int, tags: list[str]) -> None:
        self._act(lambda store: store.set_tags(run_id, tags))

    def set_note(self, run_id: int, note: str) -> None:
        self._act(lambda store: store.set_note(run_id, note))

    def archive(self, ids: Sequence[int], archived: bool) -> None:
        if ids:
            self._act(lambda store: store.set_archived(list(ids), archived))

    def delete(
        self,
        ids: Sequence[int],
        confirm: Callable[[str, str], bool],
        deleted: Callable[[list[int], str], None],
    ) -> None:
        """Ask ``confirm`` (naming what the runs' folders hold), then delete the runs with
        their folders; ``deleted(ids, sentence)`` once they are gone."""
        chosen = sorted(ids)
        if not chosen:
            return

        def ask(files: list[Any]) -> None:
            if confirm(*delete_question(chosen, files)):
                self._act(
                    lambda store: delete_runs(store, chosen).sentence(),
                    lambda sentence: deleted(chosen, sentence),
                )

        self._call(
            lambda store: [run_files(store, run_id) for run_id in chosen],
            ask,
            self._say,
            what="the runs' files",
        )


__all__ = ["RunEdits"]
