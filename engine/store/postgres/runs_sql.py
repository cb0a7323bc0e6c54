"""The Runs browser's search (run_query.py) written for PostgreSQL.

run_query.py parses the search line once; this module only says how PostgreSQL writes what
SQLite writes its own way: ``%s`` for a parameter, ``col::jsonb #> path`` for
``json_extract``, ``strpos`` for ``instr``, ``LOWER()`` for ``COLLATE NOCASE``.

JSON values are compared as SQLite's ``json_extract`` gives them: a number as a number (a JSON
true or false as 1 or 0), anything as text for a text comparison, and a JSON null like a
missing value. Sorting by a JSON path sorts the ``jsonb`` values themselves, so numbers sort
as numbers.
"""

from __future__ import annotations

from typing import Any

from cnn_lab.engine.store import run_query
from cnn_lab.engine.store.run_query import JsonKind, RunQuery
from cnn_lab.engine.store.store import RUN_COLUMNS, RUN_SELECT


def _json_sort(column: str, path: str) -> str:
    return f"NULLIF({column}::jsonb #> '{{{path.replace('.', ',')}}}', 'null'::jsonb)"


class PostgresDialect(run_query.Dialect):
    """PostgreSQL's way of writing the parts of a query that differ from SQLite's."""

    mark = "%s"
    sorts: dict[str, str] = {  # noqa: RUF012  # read only, like run_query.SORTS
        **run_query.SORTS,
        "name": "LOWER(runs.name)",
        "dataset": "LOWER(runs.dataset)",
        "model": "LOWER(runs.model)",
        "epochs": _json_sort("runs.summary_json", "epochs"),
        "best_val_accuracy": _json_sort("runs.summary_json", "best_val_accuracy"),
        "images_per_s": _json_sort("runs.summary_json", "train_images_per_s"),
    }

    def json_value(self, column: str, kind: JsonKind) -> str:
        found = f"({column}::jsonb #> %s)"
        if kind == "text":
            return f"({column}::jsonb #>> %s)"
        if kind == "any":
            return f"NULLIF({found}, 'null'::jsonb)"
        # One mention of the path parameter, so the parameters stay SQLite's: the value is
        # looked up once in a subquery and read as a number when it is one.
        return (
            f"(SELECT CASE jsonb_typeof(v) WHEN 'number' THEN (v #>> '{{}}')::double precision "
            f"WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN 1.0 ELSE 0.0 END END "
            f"FROM (SELECT {found} AS v) AS found)"
        )

    def json_path(self, path: str) -> Any:
        return path.split(".")  # a text[] path for #> and #>>

    def json_sort(self, column: str, path: str) -> str:
        return _json_sort(column, path)

    def contains(self, column: str) -> str:
        return f"strpos(LOWER({column}), %s) > 0"

    def tag_is(self) -> str:
        return "LOWER(tag) = LOWER(%s)"

    def archived(self, flag: bool) -> str:
        return f"runs.archived = {'TRUE' if flag else 'FALSE'}"


POSTGRES = PostgresDialect()


def select_runs(query: RunQuery, summary_keys: list[str] | None) -> tuple[str, list[Any]]:
    """The whole SELECT for ``query``; with ``summary_keys``, each summary cut down to those
    keys inside the server (a listing of 10,000 runs shows a few numbers of each)."""
    clauses, params = run_query.to_sql(query, POSTGRES)
    select = RUN_SELECT
    if summary_keys is not None:
        pairs = ", ".join(
            f"'{key}', runs.summary_json::jsonb -> '{key}'"
            for key in summary_keys
            if key.isidentifier()
        )
        select = select.replace(
            "runs.summary_json",
            f"jsonb_build_object({pairs})::text AS summary_json" if pairs else "'{}'",
            1,
        )
    return f"{select} {clauses}", params


__all__ = ["POSTGRES", "RUN_COLUMNS", "RUN_SELECT", "PostgresDialect", "select_runs"]
