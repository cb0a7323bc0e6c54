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
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class _Sql:
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    order: tuple[str, bool] | None = None
    archived: bool = False


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
        return "runs.summary_json", "$." + path.removeprefix("summary.")
    if "." not in path and path in _train_options():
        path = f"train.{path}"
    return "runs.spec_json", f"$.{path}"


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
    column, json_path = _json_column(path)
    value = _literal(text)
    expr = f"json_extract({column}, ?)"
    if value is None:
        sql.where.append(f"{expr} IS {'NOT ' if op == '!=' else ''}NULL")
        sql.params.append(json_path)
        return
    if isinstance(value, str):
        expr = f"LOWER({expr})"
        value = value.lower()
    if op == "!=":  # a run without the setting differs from the value too
        sql.where.append(f"({expr} IS NULL OR {expr} != ?)")
        sql.params.extend([json_path, json_path, value])
        return
    sql.where.append(f"{expr} {op} ?")
    sql.params.extend([json_path, value])


def _field(sql: _Sql, name: str, value: str) -> None:
    if name == "status":
        if value not in ALL:
            raise QueryError(
                f"'{value}' is not a run status.", f"Use one of {', '.join(sorted(ALL))}."
            )
        sql.where.append("runs.status = ?")
        sql.params.append(value)
    elif name == "tag":
        sql.where.append("runs.id IN (SELECT run_id FROM run_tags WHERE tag = ? COLLATE NOCASE)")
        sql.params.append(value)
    elif name == "experiment":
        number = _number(value)
        if number is None:
            raise QueryError(f"experiment:{value} needs an experiment's number.")
        sql.where.append("runs.experiment_id = ?")
        sql.params.append(number)
    elif name == "is":
        if value != "archived":
            raise QueryError(f"is:{value} is not a filter.", "Write is:archived.")
        sql.archived = True
    elif name == "sort":
        descending = value.startswith("-")
        key = value.lstrip("-")
        if key in SORTS:
            sql.order = (SORTS[key], descending)
        else:
            column, json_path = _json_column(key)
            sql.order = (f"json_extract({column}, '{json_path}')", descending)
    elif name in _FIELDS_CONTAINING:
        sql.where.append(f"instr(LOWER(runs.{name}), ?) > 0")
        sql.params.append(value.lower())
    else:
        raise QueryError(
            f"'{name}:' is not a filter.",
            "Filters are status:, tag:, dataset:, model:, device:, name:, experiment:, "
            "is:archived and sort:, or a setting compared with = != < <= > >=.",
        )


def _word(sql: _Sql, word: str) -> None:
    lowered = word.lower()
    clause = " OR ".join(f"instr(LOWER(runs.{c}), ?) > 0" for c in ("name", "dataset", "model"))
    number = _number(word.lstrip("#"))
    if number is not None:
        clause += " OR runs.id = ?"
        sql.params.extend([lowered] * 3 + [number])
    else:
        sql.params.extend([lowered] * 3)
    sql.where.append(f"({clause})")


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise QueryError(f"The search has an unclosed quote ({exc}).") from exc


def to_sql(query: RunQuery) -> tuple[str, list[Any]]:
    """``(WHERE ... ORDER BY ... LIMIT ?, params)`` for a ``SELECT ... FROM runs``."""
    sql = _Sql()
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
        sql.where.append("runs.archived = 0")
    elif sql.archived:
        sql.where.append("runs.archived = 1")
    if sql.order is None:
        key = query.sort if query.sort in SORTS else "created"
        sql.order = (SORTS[key], query.descending)
    expr, descending = sql.order
    direction = "DESC" if descending else "ASC"
    where = f"WHERE {' AND '.join(sql.where)}" if sql.where else ""
    # Runs without the value sort last either way; the id keeps equal values in a stable order.
    order = f"ORDER BY ({expr}) IS NULL, {expr} {direction}, runs.id {direction}"
    return f"{where} {order} LIMIT ?", [*sql.params, query.limit]
