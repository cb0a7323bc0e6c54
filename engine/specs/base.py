"""The base of every spec: frozen, strict about unknown fields, and explained in sentences."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from cnn_lab.engine.errors import SpecError


class Spec(BaseModel):
    """A frozen, JSON round-trippable value.

    Frozen because specs cross thread and process boundaries; ``extra="forbid"`` because a
    misspelt field in a hand-written JSON file must be an error, not silently ignored.

    ``from_dict`` and ``from_json`` are how a document a person wrote becomes a spec: anything
    wrong with it is a SpecError naming each bad field, never pydantic's ValidationError (a
    multi-line dump) or a JSON parser's error.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    what: ClassVar[str] = "spec"
    """What the sentences call a document of this kind: "architecture spec", "run spec"."""

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            raise SpecError(f"The {cls.what} must be a JSON object of named fields.")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise spec_error(exc, what=cls.what) from None

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        return cls.from_dict(load_json(text, what=cls.what))


def load_json(text: str | bytes, *, what: str) -> Any:
    """Parse a JSON document; a broken one is a SpecError sentence on one line.

    Python's parser recurses once per nested bracket, so a hostile file of 100,000 "[" ends
    in a RecursionError rather than a ValueError: that becomes the same kind of sentence.
    """
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecError(f"The {what} is not valid JSON: {exc}.") from None
    except RecursionError:
        raise SpecError(f"The {what} is not valid JSON: it nests too deeply.") from None


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + printable(str(item)))
    return "".join(parts) or "the spec"


def printable(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped, so that a message
    quoting what a person typed (a field name, a path) stays on one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def clean_message(msg: str) -> str:
    # pydantic prefixes custom errors with "Value error, "; the person does not need it.
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    msg = printable(msg)
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
