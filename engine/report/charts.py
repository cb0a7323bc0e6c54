"""Charts as plain geometry: lines, boxes and labels that both SVG and PDF can draw.

A report must be self-contained and must not pull a plotting library into the engine, so a
chart here is a ``Figure``: a list of primitives in pixel coordinates (y down, as SVG). The
HTML writer turns it into inline SVG with ``to_svg`` (every text escaped); the PDF writer
draws the same primitives with fpdf2. One layout, two back-ends, the same picture.

Builders: ``line_chart`` (training curves, system use, a sweep's history),
``parallel_coordinates`` (a sweep's trials), ``confusion_heatmap`` and ``bar_chart``
(parameter importance).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cnn_lab.engine.report.data import ChartData, ParallelAxis

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
INK = "#333333"
GRID = "#e3e3e3"
MUTED = "#9a9a9a"
FONT = 11.0

Anchor = Literal["start", "middle", "end"]


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = GRID
    width: float = 1.0
    dash: bool = False


@dataclass(frozen=True)
class Path:
    """An open polyline."""

    points: tuple[tuple[float, float], ...]
    stroke: str
    width: float = 1.5
    dash: bool = False


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    fill: str
    stroke: str | None = None
    tip: str = ""
    """A tooltip in SVG (a <title>); the PDF has none."""


@dataclass(frozen=True)
class Label:
    """Text whose baseline starts, centres or ends at (x, y)."""

    x: float
    y: float
    text: str
    size: float = FONT
    anchor: Anchor = "start"
    fill: str = INK
    bold: bool = False


Item = Line | Path | Box | Label


@dataclass(frozen=True)
class Figure:
    width: float
    height: float
    items: tuple[Item, ...]
    title: str = ""


# ----------------------------------------------------------------------------- scales


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    if ticks and ticks[0] > low:
        ticks.insert(0, ticks[0] - step)
    if ticks and ticks[-1] < high:
        ticks.append(ticks[-1] + step)
    return ticks


def format_tick(value: float, step: float) -> str:
    """A tick label with as many decimals as the step needs; huge and tiny in e-notation."""
    magnitude = max(abs(value), abs(step))
    if magnitude >= 1e6 or (0 < magnitude < 1e-3):
        return f"{value:.2g}"
    decimals = next(
        (d for d in range(7) if step <= 0 or abs(step * 10**d - round(step * 10**d)) < 1e-6),
        6,
    )
    return f"{value:,.{decimals}f}"


def format_value(value: float) -> str:
    """A single number for a legend or tooltip: four significant digits."""
    if not math.isfinite(value):
        return "—"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:,.4g}"


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def shorten(text: str, most: int) -> str:
    """``text`` cut to ``most`` characters with an ellipsis, for labels in tight places."""
    return text if len(text) <= most else text[: max(1, most - 1)] + "…"


def colour_ramp(t: float) -> str:
    """A perceptually ordered colour (dark blue → teal → yellow, viridis-like) for t in 0..1."""
    stops = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
    t = min(1.0, max(0.0, t)) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    f = t - i
    rgb = [round(a + (b - a) * f) for a, b in zip(stops[i], stops[i + 1], strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _blend(t: float) -> str:
    """White → blue for a heatmap cell's share in 0..1."""
    t = min(1.0, max(0.0, t))
    low, high = (255, 255, 255), (31, 94, 170)
    rgb = [round(a + (b - a) * t) for a, b in zip(low, high, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


# ----------------------------------------------------------------------------- charts


def line_chart(chart: ChartData, width: float = 640, height: float = 250) -> Figure:
    """Every series of ``chart`` on shared axes, with grid, ticks and a legend below."""
    items: list[Item] = [Label(8, 16, chart.title, 12.5, bold=True)]
    xs = _finite([x for s in chart.series for x in s.x])
    ys = _finite([y for s in chart.series for y in s.y])
    legend_rows = _legend_rows([s.name for s in chart.series], width - 70)
    left, right, top = 64.0, 16.0, 28.0
    bottom = 38.0 + 16.0 * len(legend_rows)
    plot_w, plot_h = width - left - right, height - top - bottom
    if not xs or not ys:
        items.append(Label(width / 2, top + plot_h / 2, "no values recorded", anchor="middle"))
        return Figure(width, height, tuple(items), chart.title)
    x_ticks = nice_ticks(min(xs), max(xs), 6)
    y_ticks = nice_ticks(min(ys), max(ys), 5)
    x0, x1 = x_ticks[0], x_ticks[-1]
    y0, y1 = y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1.0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / ((y1 - y0) or 1.0) * plot_h

    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    for t in y_ticks:
        items.append(Line(left, py(t), left + plot_w, py(t)))
        items.append(Label(left - 6, py(t) + 4, format_tick(t, y_step), 10, "end", MUTED))
    for t in x_ticks:
        items.append(Line(px(t), top + plot_h, px(t), top + plot_h + 4, MUTED))
        items.append(Label(px(t), top + plot_h + 16, format_tick(t, x_step), 10, "middle", MUTED))
    items.append(Line(left, top + plot_h, left + plot_w, top + plot_h, MUTED))
    items.append(Label(left + plot_w, top + plot_h + 30, chart.x_label, 10, "end", MUTED))
    items.append(Label(width - right, 16, chart.y_label, 10, "end", MUTED))
    for index, series in enumerate(chart.series):
        colour = PALETTE[index % len(PALETTE)]
        points = [
            (px(x), py(y))
            for x, y in zip(series.x, series.y, strict=True)
            if math.isfinite(x) and math.isfinite(y)
        ]
        if series.style == "line":
            for run in _runs(series.x, series.y):
                if len(run) > 1:
                    items.append(Path(tuple((px(x), py(y)) for x, y in run), colour))
        if series.style == "points" or len(points) <= 40:
            size = 5.0 if series.style == "points" else 3.5
            items += [
                Box(x - size / 2, y - size / 2, size, size, colour, tip=series.name)
                for x, y in points
            ]
    y = height - 12 - 16 * (len(legend_rows) - 1)
    for row in legend_rows:
        x = left
        for index, name, w in row:
            colour = PALETTE[index % len(PALETTE)]
            items.append(Box(x, y - 8, 14, 3, colour))
            items.append(Label(x + 18, y - 3, name, 10))
            x += w
        y += 16
    return Figure(width, height, tuple(items), chart.title)


def _runs(xs: Sequence[float], ys: Sequence[float]) -> list[list[tuple[float, float]]]:
    """The series cut into runs of finite points: a NaN or an infinity leaves a gap."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=True):
        if math.isfinite(x) and math.isfinite(y):
            runs[-1].append((x, y))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _legend_rows(names: Sequence[str], width: float) -> list[list[tuple[int, str, float]]]:
    """Legend entries packed into rows that fit ``width`` (a character is about 6 px)."""
    rows: list[list[tuple[int, str, float]]] = [[]]
    used = 0.0
    for index, name in enumerate(names):
        shown = shorten(name, 40)
        w = 30 + 6.2 * len(shown)
        if rows[-1] and used + w > width:
            rows.append([])
            used = 0.0
        rows[-1].append((index, shown, w))
        used += w
    return rows if rows[0] else []


def parallel_coordinates(
    axes: Sequence[ParallelAxis],
    colour: Sequence[float | None],
    width: float = 720,
    height: float = 320,
    title: str = "Trials across the searched parameters",
) -> Figure:
    """One vertical axis per parameter (and the value), one line per trial.

    Lines are coloured by the trial's value (dark: low, yellow: high); a trial without one
    (failed, pruned, running) is a grey dashed line. Categorical values are spaced evenly
    in sorted order; a log-searched parameter gets a log axis.
    """
    items: list[Item] = [Label(8, 16, title, 12.5, bold=True)]
    if not axes or not colour:
        items.append(Label(width / 2, height / 2, "no trials yet", anchor="middle"))
        return Figure(width, height, tuple(items), title)
    top, bottom, side = 44.0, 52.0, 60.0
    span = height - top - bottom
    gap = (width - 2 * side) / max(1, len(axes) - 1)
    xs = [side + i * gap for i in range(len(axes))] if len(axes) > 1 else [width / 2]
    positions = [_axis_positions(axis) for axis in axes]
    known = _finite([c for c in colour if c is not None])
    c0, c1 = (min(known), max(known)) if known else (0.0, 1.0)
    order = sorted(range(len(colour)), key=lambda i: (colour[i] is not None, colour[i] or 0))
    for trial in order:  # grey first, best on top
        value = colour[trial]
        stroke = (
            colour_ramp((value - c0) / ((c1 - c0) or 1.0))
            if value is not None and math.isfinite(value)
            else MUTED
        )
        run: list[tuple[float, float]] = []
        for x, place in zip(xs, positions, strict=True):
            where = place.get(trial)
            if where is None:
                if len(run) > 1:
                    items.append(Path(tuple(run), stroke, 1.6, dash=value is None))
                run = []
                continue
            run.append((x, top + span * (1 - where)))
        if len(run) > 1:
            items.append(Path(tuple(run), stroke, 1.6, dash=value is None))
        elif len(run) == 1:
            items.append(Box(run[0][0] - 2, run[0][1] - 2, 4, 4, stroke))
    for x, axis, place in zip(xs, axes, positions, strict=True):
        items.append(Line(x, top, x, top + span, INK, 1.2))
        items.append(Label(x, height - bottom + 20, shorten(axis.label, 22), 10.5, "middle"))
        for text, where in _axis_ticks(axis, place):
            items.append(
                Line(x - 3, top + span * (1 - where), x + 3, top + span * (1 - where), INK)
            )
            items.append(Label(x + 6, top + span * (1 - where) + 4, shorten(text, 14), 9, "start"))
    if known:
        items.append(Label(width - 8, 16, f"colour: {axes[-1].label}", 10, "end", MUTED))
        items.append(
            Label(width - 8, 30, f"{format_value(c0)} → {format_value(c1)}", 10, "end", MUTED)
        )
    return Figure(width, height, tuple(items), title)


def _axis_positions(axis: ParallelAxis) -> dict[int, float]:
    """Each trial's place on the axis in 0..1 (bottom to top); missing trials are absent."""
    numbers = [v for v in axis.values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numbers and len(numbers) == sum(v is not None for v in axis.values):
        log = axis.log and all(v > 0 for v in numbers)
        scaled = [math.log10(v) if log else float(v) for v in numbers]
        finite = _finite(scaled)
        if not finite:
            return {}
        low, high = min(finite), max(finite)
        out = {}
        for i, v in enumerate(axis.values):
            if v is None:
                continue
            s = math.log10(v) if log else float(v)  # type: ignore[arg-type]
            if math.isfinite(s):
                out[i] = 0.5 if high == low else (s - low) / (high - low)
        return out
    categories = _categories(axis)
    step = 1 / max(1, len(categories) - 1)
    index = {c: (0.5 if len(categories) == 1 else i * step) for i, c in enumerate(categories)}
    return {i: index[str(v)] for i, v in enumerate(axis.values) if v is not None}


def _categories(axis: ParallelAxis) -> list[str]:
    return sorted({str(v) for v in axis.values if v is not None})


def _axis_ticks(axis: ParallelAxis, place: dict[int, float]) -> list[tuple[str, float]]:
    """Labels along an axis: each value when there are few (at most 8), else the extremes."""
    if not place:
        return []
    numeric = all(
        isinstance(v, (int, float)) and not isinstance(v, bool)
        for v in axis.values
        if v is not None
    )
    if numeric:
        at = {float(axis.values[i]): where for i, where in place.items()}  # type: ignore[arg-type]
        shown = sorted(at) if len(at) <= 8 else [min(at), max(at)]
        return [(format_value(v), at[v]) for v in shown]
    categories = _categories(axis)
    if len(categories) > 8:
        return [(categories[0], 0.0), (categories[-1], 1.0)]
    step = 1 / max(1, len(categories) - 1)
    return [(c, 0.5 if len(categories) == 1 else i * step) for i, c in enumerate(categories)]


def confusion_heatmap(
    classes: Sequence[str], matrix: Sequence[Sequence[int]], width: float = 640
) -> Figure:
    """Rows are the true classes, columns the predictions; each row coloured by its share.

    Columns carry the classes' numbers and rows "number name", so long class names never
    collide; counts are written in the cells while they are large enough to read.
    """
    k = len(classes)
    title = "Confusion matrix (rows: true class, columns: predicted)"
    items: list[Item] = [Label(8, 16, title, 12.5, bold=True)]
    if k == 0:
        return Figure(width, 60, tuple(items), title)
    left, top = 170.0, 44.0
    cell = max(6.0, min(34.0, (width - left - 16) / k))
    height = top + cell * k + 16
    for j in range(k):
        items.append(
            Label(
                left + cell * (j + 0.5), top - 6, str(j + 1), min(10, cell * 0.6), "middle", MUTED
            )
        )
    for i, name in enumerate(classes):
        row = list(matrix[i]) if i < len(matrix) else [0] * k
        total = sum(row)
        y = top + cell * i
        items.append(
            Label(
                left - 6,
                y + cell / 2 + 4,
                shorten(f"{i + 1}. {name}", 26),
                min(10.5, cell * 0.7),
                "end",
            )
        )
        for j in range(k):
            count = row[j] if j < len(row) else 0
            share = count / total if total else 0.0
            tip = f"true {name}, predicted {classes[j]}: {count} ({share:.0%})"
            edge = INK if i == j else "#ffffff"  # the diagonal (right answers) outlined
            items.append(Box(left + cell * j, y, cell, cell, _blend(share), edge, tip))
            if cell >= 18 and count:
                ink = "#ffffff" if share > 0.55 else INK
                items.append(
                    Label(
                        left + cell * (j + 0.5),
                        y + cell / 2 + 4,
                        str(count),
                        min(11, cell * 0.45),
                        "middle",
                        ink,
                    )
                )
    return Figure(width, height, tuple(items), title)


def bar_chart(
    title: str, bars: Sequence[tuple[str, float]], width: float = 640, unit: str = "%"
) -> Figure:
    """Horizontal bars, longest first as given; values are shares shown as percentages."""
    row = 22.0
    top, left = 30.0, 200.0
    height = top + row * max(1, len(bars)) + 10
    items: list[Item] = [Label(8, 16, title, 12.5, bold=True)]
    high = max((v for _, v in bars), default=0.0) or 1.0
    for i, (name, value) in enumerate(bars):
        y = top + row * i
        items.append(Label(left - 8, y + 14, shorten(name, 30), 10.5, "end"))
        w = max(1.0, (width - left - 70) * value / high)
        items.append(Box(left, y + 3, w, row - 8, PALETTE[0], tip=f"{name}: {value:.1%}"))
        shown = f"{value:.1%}" if unit == "%" else format_value(value)
        items.append(Label(left + w + 6, y + 14, shown, 10))
    return Figure(width, height, tuple(items), title)


# ----------------------------------------------------------------------------- SVG


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _attr(text: str) -> str:
    return html.escape(text, quote=True)


def to_svg(figure: Figure) -> str:
    """Inline SVG for an HTML page: no xmlns URL, no scripts, every text escaped."""
    parts = [
        f'<svg class="chart" viewBox="0 0 {_n(figure.width)} {_n(figure.height)}" '
        f'width="{_n(figure.width)}" height="{_n(figure.height)}" role="img" '
        f'aria-label="{_attr(figure.title)}" font-family="sans-serif">'
    ]
    for item in figure.items:
        parts.append(_SVG[type(item)](item))
    parts.append("</svg>")
    return "".join(parts)


def _svg_line(item: Item) -> str:
    assert isinstance(item, Line)
    dash = ' stroke-dasharray="4 3"' if item.dash else ""
    return (
        f'<line x1="{_n(item.x1)}" y1="{_n(item.y1)}" x2="{_n(item.x2)}" y2="{_n(item.y2)}" '
        f'stroke="{item.stroke}" stroke-width="{_n(item.width)}"{dash}/>'
    )


def _svg_path(item: Item) -> str:
    assert isinstance(item, Path)
    points = " ".join(f"{_n(x)},{_n(y)}" for x, y in item.points)
    dash = ' stroke-dasharray="5 4"' if item.dash else ""
    return (
        f'<polyline points="{points}" fill="none" stroke="{item.stroke}" '
        f'stroke-width="{_n(item.width)}" stroke-linejoin="round"{dash}/>'
    )


def _svg_box(item: Item) -> str:
    assert isinstance(item, Box)
    stroke = f' stroke="{item.stroke}"' if item.stroke else ""
    body = f"<title>{html.escape(item.tip)}</title>" if item.tip else ""
    attrs = (
        f'x="{_n(item.x)}" y="{_n(item.y)}" width="{_n(item.w)}" height="{_n(item.h)}" '
        f'fill="{item.fill}"{stroke}'
    )
    return f"<rect {attrs}>{body}</rect>" if body else f"<rect {attrs}/>"


def _svg_label(item: Item) -> str:
    assert isinstance(item, Label)
    weight = ' font-weight="bold"' if item.bold else ""
    return (
        f'<text x="{_n(item.x)}" y="{_n(item.y)}" font-size="{_n(item.size)}" '
        f'text-anchor="{item.anchor}" fill="{item.fill}"{weight}>{html.escape(item.text)}</text>'
    )


_SVG = {Line: _svg_line, Path: _svg_path, Box: _svg_box, Label: _svg_label}


__all__ = [
    "Box",
    "Figure",
    "Label",
    "Line",
    "Path",
    "bar_chart",
    "confusion_heatmap",
    "format_tick",
    "line_chart",
    "nice_ticks",
    "parallel_coordinates",
    "to_svg",
]
