"""Which runs the Runs panel lists, in what order, and what it says when it lists none.

The search line, the status filter, "Show archived" and the column order all become one
``RunQuery`` (engine/store/run_query.py), so 10,000 runs filter and sort inside SQLite. The
panel copies its widgets into a ``RunsListing`` and shows the texts it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from cnn_lab.engine.store.locations import describe
from cnn_lab.engine.store.run_query import RunQuery

LIST_LIMIT = 10_000
"""Runs listed at once; the search narrows the rest down."""
SEARCH_HELP = (
    "Filter runs: status:completed  tag:baseline  dataset:cats  model:resnet  lr<0.01  "
    "batch_size>=64  architecture.preset=resnet18  summary.best_val_accuracy>0.9  "
    "sort:-lr  is:archived  or words of the name"
)
NO_RUNS_TITLE = "No runs yet"
NO_RUNS_TEXT = (
    "Every run you train is saved here with its settings, curves and results, to search, "
    "compare, evaluate, predict with and export later. Press Train (Ctrl+Return) to train "
    "the current data, architecture and hyperparameters, or open another run database from "
    "the File menu. Runs are saved in {path}."
)
ALL_ARCHIVED_TITLE = "Every run here is archived"
ALL_ARCHIVED_TEXT = "Archived runs are hidden from the list; Show archived lists them again."
NO_MATCH_TITLE = "No run matches {what}"
NO_MATCH_TEXT = (
    "Loosen the search or the status filter, or clear them to list every run. "
    "Hover the search box for the terms it understands."
)
DESCENDING_FIRST = frozenset({"created", "best_val_accuracy", "images_per_s", "epochs", "duration"})
"""Sort keys whose first click lists the largest first (newest, best, fastest, longest)."""


@dataclass(frozen=True)
class EmptyMessage:
    """What the panel shows instead of an empty table, and which way out it offers."""

    title: str
    text: str
    offer_clear: bool = False  # "Clear the search"
    offer_archived: bool = False  # "Show archived"


@dataclass
class RunsListing:
    """The search, status filter, archived switch and sort order of the Runs table, as the
    store query they make."""

    query: RunQuery = field(default_factory=lambda: RunQuery(limit=LIST_LIMIT))

    def set_filters(self, text: str, status: str | None, include_archived: bool) -> RunQuery:
        """What the filter line holds now; returns the query to ask."""
        self.query = replace(
            self.query, text=text, status=status, include_archived=include_archived
        )
        return self.query

    def filtered(self) -> bool:
        """Whether the search or the status filter narrows the list (archiving aside)."""
        return bool(self.query.text.strip()) or self.query.status is not None

    def sort_by(self, key: str) -> None:
        """A header click: the same column again flips the order; a new one starts in the
        order people look for first (DESCENDING_FIRST)."""
        query = self.query
        descending = not query.descending if key == query.sort else key in DESCENDING_FIRST
        self.query = replace(query, sort=key, descending=descending)

    def count_text(self, listed: int, db_path: str) -> str:
        """The line over the table: how many runs it lists, and from which database."""
        shown = f"{listed:,} run{'s' * (listed != 1)}"
        if listed == LIST_LIMIT:
            shown = f"The first {shown} (narrow the search to see others)"
        return f"{shown} in {describe(db_path)}"  # an address without its password

    def empty_message(self, stored: bool, db_path: str) -> EmptyMessage:
        """Why nothing is listed: the search matches none, every run is archived (``stored``:
        the database has runs), or the database has none yet."""
        text, status = self.query.text.strip(), self.query.status
        if self.filtered():
            words = [f"“{text}”"] if text else []
            if status is not None:
                words.append(f"with status {status}")
            title = NO_MATCH_TITLE.format(what=" ".join(words))
            return EmptyMessage(title, NO_MATCH_TEXT, offer_clear=True)
        if stored and not self.query.include_archived:
            return EmptyMessage(ALL_ARCHIVED_TITLE, ALL_ARCHIVED_TEXT, offer_archived=True)
        return EmptyMessage(NO_RUNS_TITLE, NO_RUNS_TEXT.format(path=describe(db_path)))
