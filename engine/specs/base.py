"""The base of every spec: frozen, strict about unknown fields, and explained in sentences."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from cnn_lab.engine.errors import SpecError


class Spec(BaseModel):
    """A frozen, JSON round-trippable value.

    Frozen because specs cross thread and process boundaries; ``extra="forbid"`` because a
    misspelt field in a hand-written JSON file must be an error, not silently ignored.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "the spec"


def clean_message(msg: str) -> str:
    # pydantic prefixes custom errors with "Value error, "; the person does not need it.
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg[:1].lower() + msg[1:] if msg else msg


def explain(error: ValidationError, *, what: str = "spec") -> str:
    """Turn a pydantic ValidationError into one sentence per bad field, joined on one line."""
    sentences = []
    for item in error.errors(include_url=False):
        path = _field_path(tuple(item.get("loc", ())))
        msg = clean_message(str(item.get("msg", "is invalid")))
        if item.get("type") == "extra_forbidden":
            sentences.append(f"{path} is not a known field of the {what}.")
            continue
        if item.get("type") == "missing":
            sentences.append(f"{path} is required.")
            continue
        got = item.get("input")
        shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
        sentences.append(f"{path}: {msg}{shown}.")
    return "The " + what + " is not valid: " + " ".join(sentences)


def spec_error(error: ValidationError, *, what: str = "spec") -> SpecError:
    return SpecError(explain(error, what=what))
