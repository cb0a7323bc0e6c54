"""The Runs browser's search box as SQL: ``status:completed tag:baseline lr<0.01 cats``.

A person with thousands of runs filters by what they remember: a status, a tag, the dataset,
a hyperparameter's range, a word of the name. One line of terms says all of that, the way a
code host's issue search does, and each term becomes one ``WHERE`` clause with parameters
(never text pasted into SQL), so 10,000 runs filter inside SQLite in milliseconds.

Terms, all of which must hold:

- ``status:completed`` (also ``dataset:``, ``model:``, ``device:``, ``name:``, ``tag:``,
  ``experiment:``): the field equals (``status``, ``tag``, ``experiment``) or contains the value;
- ``is:archived``: only archived runs (they are hidden otherwise);
- ``PATH OP VALUE`` with ``OP`` one of ``= != < <= > >=``: a spec value, e.g. ``lr<0.01``,
  ``train.batch_size>=64``, ``architecture.preset=resnet18``; a bare name that is a training
  option means ``train.NAME``; ``summary.best_val_accuracy>0.9`` reads the run's results;
- ``sort:PATH`` or ``sort:-PATH``: order by a column name (see ``SORTS``) or any such path;
- anything else: a word the name, dataset, model or id contains.

The terms are parsed once, here; what differs between databases (the parameter mark, reading
a JSON path, a case-blind comparison) is asked of a ``Dialect``. ``SQLITE`` is the default;
the PostgreSQL store passes its own (engine/store/postgres/runs_sql.py).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Literal

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.store.status import ALL

SORTS: dict[str, str] = {
    "id": "runs.id",
    "created": "runs.created_at",
    "name": "runs.name COLLATE NOCASE",
    "status": "runs.status",
    "dataset": "runs.dataset COLLATE NOCASE",
    "model": "runs.model COLLATE NOCASE",
    "device": "runs.device",
    "duration": "(COALESCE(runs.ended_at, runs.heartbeat_at) - runs.started_at)",
    "epochs": "json_extract(runs.summary_json, '$.epochs')",
    "best_val_accuracy": "json_extract(runs.summary_json, '$.best_val_accuracy')",
    "images_per_s": "json_extract(runs.summary_json, '$.train_images_per_s')",
}
"""Named orders (the Runs table's columns sort by these)."""

_FIELDS_CONTAINING = {"dataset", "model", "device", "name"}
_COMPARISON = re.compile(r"^([A-Za-z_][\w.]*)\s*(<=|>=|!=|=|<|>)\s*(.+)$")
_INCOMPLETE = re.compile(r"^[\w.]+\s*(<=|>=|!=|=|<|>)$")
_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class QueryError(UserError):
    """A search term that cannot be read; the message names it and says what would work."""


_SQLITE_INT_MAX = 2**63 - 1


def _number(text: str) -> int | None:
    """``text`` as a run or experiment number, or None: only ASCII digits (``"²".isdigit()``
    is true, but int() refuses it) and only what an SQLite integer holds."""
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= _SQLITE_INT_MAX else None


@dataclass(frozen=True)
class RunQuery:
    """What the Runs browser asks for: the search line plus the panel's own controls."""

    text: str = ""
    status: str | None = None
    include_archived: bool = False
    sort: str = "created"
    descending: bool = True
    limit: int = 10_000


JsonKind = Literal["number", "text", "any"]
"""What a comparison needs a JSON value as: a number, text, or whatever it is (``IS NULL``)."""


class Dialect:
    """The parts of a query SQLite writes its own way; a subclass renders another database's.

    Every method returns SQL with at most one parameter mark, so the parser's parameter list
    is the same for every dialect (only ``json_path`` decides what the path parameter is).
    """

    mark = "?"
    sorts: dict[str, str] = SORTS

    def json_value(self, column: str, kind: JsonKind) -> str:
        """The value at a path (given as one parameter) of the JSON text in ``column``.
        SQLite's json_extract already gives numbers, text and NULL as they are."""
        return f"json_extract({column}, ?)"

    def json_path(self, path: str) -> Any:
        """The parameter ``json_value`` takes for the dotted ``path``."""
        return f"$.{path}"

    def json_sort(self, column: str, path: str) -> str:
        """An ORDER BY expression for the dotted ``path`` (checked against ``_PATH``, so it
        can be written into the SQL)."""
        return f"json_extract({column}, '$.{path}')"

    def contains(self, column: str) -> str:
        """``column`` contains the (lower-case) parameter, whatever the case."""
        return f"instr(LOWER({column}), ?) > 0"

    def tag_is(self) -> str:
        """A ``run_tags.tag`` equal to the parameter, whatever the case."""
        return "tag = ? COLLATE NOCASE"

    def archived(self, flag: bool) -> str:
        return f"runs.archived = {int(flag)}"


SQLITE = Dialect()


@dataclass
class _Sql:
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    order: tuple[str, bool] | None = None
    archived: bool = False
    dialect: Dialect = SQLITE


def _train_options() -> frozenset[str]:
    # Imported here: the store is light, and only a search with a bare name needs the specs.
    from cnn_lab.engine.specs.train import TrainSpec

    return frozenset(TrainSpec.model_fields)


def _json_column(path: str) -> tuple[str, str]:
    """``summary.x`` reads the results; a bare training option is ``train.x``; else the spec."""
    if not _PATH.match(path):
        raise QueryError(
            f"'{path}' is not a setting's path.", "Write it as train.lr or architecture.preset."
        )
    if path.startswith("summary."):
        return "runs.summary_json", path.removeprefix("summary.")
    if "." not in path and path in _train_options():
        path = f"train.{path}"
    return "runs.spec_json", path


def _literal(text: str) -> Any:
    lowered = text.lower()
    if lowered in {"true", "false"}:
        return int(lowered == "true")  # SQLite's json_extract gives JSON booleans as 1 and 0
    if lowered in {"null", "none"}:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _compare(sql: _Sql, path: str, op: str, text: str) -> None:
    column, dotted = _json_column(path)
    dialect, mark = sql.dialect, sql.dialect.mark
    json_path = dialect.json_path(dotted)
    value = _literal(text)
    if value is None:
        expr = dialect.json_value(column, "any")
        sql.where.append(f"{expr} IS {'NOT ' if op == '!=' else ''}NULL")
        sql.params.append(json_path)
        return
    if isinstance(value, str):
        expr = f"LOWER({dialect.json_value(column, 'text')})"
        value = value.lower()
    else:
        expr = dialect.json_value(column, "number")
    if op == "!=":  # a run without the setting differs from the value too
        sql.where.append(f"({expr} IS NULL OR {expr} != {mark})")
        sql.params.extend([json_path, json_path, value])
        return
    sql.where.append(f"{expr} {op} {mark}")
    sql.params.extend([json_path, value])


def _field(sql: _Sql, name: str, value: str) -> None:
    dialect, mark = sql.dialect, sql.dialect.mark
    if name == "status":
        if value not in ALL:
            raise QueryError(
                f"'{value}' is not a run status.", f"Use one of {', '.join(sorted(ALL))}."
            )
        sql.where.append(f"runs.status = {mark}")
        sql.params.append(value)
    elif name == "tag":
        sql.where.append(f"runs.id IN (SELECT run_id FROM run_tags WHERE {dialect.tag_is()})")
        sql.params.append(value)
    elif name == "experiment":
        number = _number(value)
        if number is None:
            raise QueryError(f"experiment:{value} needs an experiment's number.")
        sql.where.append(f"runs.experiment_id = {mark}")
        sql.params.append(number)
    elif name == "is":
        if value != "archived":
            raise QueryError(f"is:{value} is not a filter.", "Write is:archived.")
        sql.archived = True
    elif name == "sort":
        descending = value.startswith("-")
        key = value.lstrip("-")
        if key in dialect.sorts:
            sql.order = (dialect.sorts[key], descending)
        else:
            sql.order = (dialect.json_sort(*_json_column(key)), descending)
    elif name in _FIELDS_CONTAINING:
        sql.where.append(dialect.contains(f"runs.{name}"))
        sql.params.append(value.lower())
    else:
        raise QueryError(
            f"'{name}:' is not a filter.",
            "Filters are status:, tag:, dataset:, model:, device:, name:, experiment:, "
            "is:archived and sort:, or a setting compared with = != < <= > >=.",
        )


def _word(sql: _Sql, word: str) -> None:
    lowered = word.lower()
    clause = " OR ".join(sql.dialect.contains(f"runs.{c}") for c in ("name", "dataset", "model"))
    number = _number(word.lstrip("#"))
    if number is not None:
        clause += f" OR runs.id = {sql.dialect.mark}"
        sql.params.extend([lowered] * 3 + [number])
    else:
        sql.params.extend([lowered] * 3)
    sql.where.append(f"({clause})")


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise QueryError(f"The search has an unclosed quote ({exc}).") from exc


def to_sql(query: RunQuery, dialect: Dialect = SQLITE) -> tuple[str, list[Any]]:
    """``(WHERE ... ORDER BY ... LIMIT ?, params)`` for a ``SELECT ... FROM runs``, written
    in ``dialect`` (SQLite's unless given)."""
    sql = _Sql(dialect=dialect)
    for token in _tokens(query.text):
        comparison = _COMPARISON.match(token)
        if incomplete := _INCOMPLETE.match(token):
            raise QueryError(f"'{token}' needs a value after {incomplete.group(1)}.")
        if comparison and ":" not in comparison.group(1):
            _compare(sql, *comparison.groups())
        elif ":" in token and not token.startswith(":"):
            name, _, value = token.partition(":")
            if not value:
                raise QueryError(f"'{token}' needs a value after the colon.")
            _field(sql, name.lower(), value)
        else:
            _word(sql, token)
    if query.status is not None:
        _field(sql, "status", query.status)
    if not (query.include_archived or sql.archived):
        sql.where.append(dialect.archived(False))
    elif sql.archived:
        sql.where.append(dialect.archived(True))
    if sql.order is None:
        key = query.sort if query.sort in dialect.sorts else "created"
        sql.order = (dialect.sorts[key], query.descending)
    expr, descending = sql.order
    direction = "DESC" if descending else "ASC"
    where = f"WHERE {' AND '.join(sql.where)}" if sql.where else ""
    # Runs without the value sort last either way; the id keeps equal values in a stable order.
    order = f"ORDER BY ({expr}) IS NULL, {expr} {direction}, runs.id {direction}"
    return f"{where} {order} LIMIT {dialect.mark}", [*sql.params, query.limit]
