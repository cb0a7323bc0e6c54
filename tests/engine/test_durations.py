"""The one family of duration formats: each named style, and what is not a finite number."""

from __future__ import annotations

import math

import pytest

from cnn_lab.engine.util.durations import STYLES, format_duration


@pytest.mark.parametrize(
    ("style", "seconds", "text"),
    [
        ("clock", 0, "0:00"),
        ("clock", 59.6, "1:00"),
        ("clock", 61, "1:01"),
        ("clock", 3600, "1:00:00"),
        ("clock", -3, "0:00"),
        ("spoken", 0, "0 s"),
        ("spoken", 44.6, "45 s"),
        ("spoken", 60, "1 min"),
        ("spoken", 80, "1 min 20 s"),
        ("spoken", 7500, "2 h 05 min"),
        ("precise", 10, "10.0 s"),
        ("precise", 42.04, "42.0 s"),
        ("precise", 187, "3 min 07 s"),
        ("precise", 7500, "2 h 05 min"),
        ("rough", 30, "30 s"),
        ("rough", 600, "10 min"),
        ("rough", 5400, "1.5 h"),
    ],
)
def test_each_style_reads_as_named(style: str, seconds: float, text: str) -> None:
    assert format_duration(seconds, style) == text  # type: ignore[arg-type]


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("seconds", [math.inf, -math.inf, math.nan, None])
def test_no_finite_number_reads_unknown_in_every_style(style: str, seconds: object) -> None:
    assert format_duration(seconds, style) == "unknown"  # type: ignore[arg-type]


def test_the_default_style_is_the_clock() -> None:
    assert format_duration(125) == format_duration(125, "clock") == "2:05"
