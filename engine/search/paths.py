"""Dotted paths into a RunSpec ("train.lr", "dataset.augment.0.strength") and ``apply``.

A search names the fields it varies by path rather than by a fixed list, so that any field a
RunSpec gains later can be searched without touching this package. A trial's spec is built
by writing the sampled values into the base spec's JSON and validating the result through
RunSpec, so an impossible combination is refused with RunSpec's own sentence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cnn_lab.engine.errors import SpecError
from cnn_lab.engine.specs import RunSpec

#: Paths a search may not vary: they describe the document, not the run.
FORBIDDEN_ROOTS = frozenset({"schema_version"})

#: Mappings whose keys are the person's own rather than the spec's fields: a module's keyword
#: arguments. A search may add a key there, and its value may be a list or an object, since
#: it is passed to the class as it is.
OPEN_MAPPINGS = frozenset({("architecture", "module", "kwargs")})


def _parts(path: str) -> list[str]:
    return [part for part in path.strip().split(".")]


def check_path(document: Mapping[str, Any], path: str) -> str | None:
    """Why ``path`` does not name one value of ``document`` (a dumped RunSpec), or None."""
    parts = _parts(path)
    if not path.strip() or any(not part for part in parts):
        return f"{path!r} is not a dotted path such as 'train.lr'"
    if parts[0] in FORBIDDEN_ROOTS:
        return f"{path!r} describes the spec file, not the run, so it cannot be searched"
    node: Any = document
    walked: list[str] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, Mapping) and tuple(walked) in OPEN_MAPPINGS and last:
            return None  # any value, new keys included, for the person's own arguments
        if isinstance(node, Mapping):
            if part not in node:
                known = ", ".join(sorted(node)) or "none"
                where = ".".join(walked) or "the run spec"
                return f"{path!r} is not a field of the run spec ({where} has: {known})"
            node = node[part]
        elif isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                where = ".".join(walked)
                return (
                    f"{path!r} needs an index below {len(node)} after {where!r} "
                    "(the base spec's list is that long)"
                )
            node = node[int(part)]
        else:
            return f"{path!r} goes inside {'.'.join(walked)!r}, which is a single value"
        walked.append(part)
    if isinstance(node, Mapping | list):
        return f"{path!r} names a whole section; name one field inside it, such as 'train.lr'"
    return None


def _set(document: Any, parts: list[str], value: Any) -> None:
    node = document
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def apply(base: RunSpec, params: Mapping[str, Any], *, name: str | None = None) -> RunSpec:
    """The RunSpec of one trial: ``base`` with each path in ``params`` set to its value.

    Raises SpecError, naming the path, when a value does not fit (a path that is not in the
    spec, or a value RunSpec refuses such as a negative learning rate).
    """
    document = base.model_dump(mode="json")
    for path, value in params.items():
        problem = check_path(document, path)
        if problem is not None:
            raise SpecError(f"The search cannot set {path}: {problem}.")
        _set(document, _parts(path), value)
    if name is not None:
        document["name"] = name[:200]
    try:
        return RunSpec.from_dict(document)
    except SpecError as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise SpecError(
            f"The parameters {shown} do not make a valid run: {exc.message}",
            hint="Narrow the search so that every point is a run that can train.",
        ) from None


__all__ = ["apply", "check_path"]
