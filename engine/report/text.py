"""Values as a report prints them: one place, so HTML, PDF and tables agree."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from cnn_lab.engine.util.durations import format_duration

MISSING = "—"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def percent(value: Any, digits: int = 1) -> str:
    if not is_number(value) or not math.isfinite(value):
        return MISSING
    return f"{value:.{digits}%}"


def number(value: Any, digits: int = 4) -> str:
    """A measurement: ``2.181``, ``1,219``, ``3.2e-05``; missing or NaN as a dash."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not is_number(value) or not math.isfinite(value):
        return MISSING
    if value != 0 and (abs(value) >= 1e7 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def fixed(value: Any, digits: int = 3) -> str:
    """A score in a column: always ``digits`` decimals, so the column lines up."""
    if not is_number(value) or not math.isfinite(value):
        return MISSING
    return f"{value:.{digits}f}"


def duration(seconds: Any) -> str:
    """``42.0 s``, ``3 min 07 s``, ``2 h 05 min`` (the ``precise`` style); missing as a dash."""
    if not is_number(seconds) or not math.isfinite(seconds):
        return MISSING
    return format_duration(seconds, "precise")


def when(timestamp: Any) -> str:
    if not is_number(timestamp):
        return MISSING
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def value(item: Any) -> str:
    """A spec or summary value: numbers as numbers, None as "none", lists as JSON."""
    if item is None:
        return "none"
    if isinstance(item, str):
        return item
    if is_number(item) or isinstance(item, bool):
        return number(item, 6) if isinstance(item, float) else number(item)
    return json.dumps(item, ensure_ascii=False, default=str)


def flatten(document: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted paths to leaves, in document order: ``train.lr``, ``dataset.augment.0.name``.

    An empty list or dict is a leaf of its own, so "no augmentation" still shows.
    """
    if isinstance(document, dict) and document:
        out: list[tuple[str, Any]] = []
        for key, item in document.items():
            out += flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(document, (list, tuple)) and document:
        out = []
        for index, item in enumerate(document):
            out += flatten(item, f"{prefix}.{index}" if prefix else str(index))
        return out
    return [(prefix, document)]


def plain(data: Any) -> Any:
    """``data`` with every non-finite float as None, so strict JSON can hold it."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {str(k): plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [plain(v) for v in data]
    return data
