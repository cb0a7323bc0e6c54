"""The PDF's pages, planned before anything is drawn, so their number is predictable.

A page is a grid of ``ROWS_PER_PAGE`` rows of equal height under its section's title.
Every section starts a new page; its content is a flat list of units, each a whole number
of rows: a fact, a table row, a line of wrapped text (one row each), a chart
(``CHART_ROWS``), a strip of thumbnails (``THUMB_ROWS``). A unit that does not fit the rows
left goes to the next page; a table that continues there gets its header again in a slot
above the rows, outside the count. Text never wraps on its own: long paragraphs are cut
into lines here (by characters, so the count does not depend on the font) and long cells
are shortened to fit when drawn.

So a section of n one-row units takes ceil(n / ROWS_PER_PAGE) pages, and a section of k
charts ceil(k / CHARTS_PER_PAGE): tests can count the pages from the data alone.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cnn_lab.engine.report import charts
from cnn_lab.engine.report.data import (
    Fact,
    RunReportData,
    SweepReportData,
    Table,
    Thumbnail,
)

ROWS_PER_PAGE = 39
ROW_MM = 6.0
CONTENT_MM = 182.0
"""A4 (210 mm) less two 14 mm margins."""
CHART_ROWS = 13
CHARTS_PER_PAGE = ROWS_PER_PAGE // CHART_ROWS
THUMB_ROWS = 6
THUMBS_PER_STRIP = 6
WRAP_CHARS = 105
"""Characters per line of wrapped text (9 pt on 182 mm holds about 110)."""


@dataclass(frozen=True)
class Heading:
    text: str
    rows: int = 1


@dataclass(frozen=True)
class TextLine:
    text: str
    bold: bool = False
    size: float = 9.0
    rows: int = 1


@dataclass(frozen=True)
class FactRow:
    fact: Fact
    rows: int = 1


@dataclass(frozen=True)
class TableHeader:
    table: Table
    rows: int = 1


@dataclass(frozen=True)
class TableRow:
    table: Table
    cells: tuple[str, ...]
    rows: int = 1


@dataclass(frozen=True)
class FigureBlock:
    figure: charts.Figure
    rows: int


@dataclass(frozen=True)
class ThumbStrip:
    thumbs: tuple[Thumbnail, ...]
    rows: int = THUMB_ROWS


Unit = Heading | TextLine | FactRow | TableHeader | TableRow | FigureBlock | ThumbStrip


@dataclass(frozen=True)
class Page:
    section: str
    units: tuple[Unit, ...]
    continued: Table | None = None
    """A table carried over from the page before: its header goes above the rows."""


@dataclass(frozen=True)
class Section:
    title: str
    units: tuple[Unit, ...]


# ----------------------------------------------------------------------------- units


def wrapped(text: str, *, bold: bool = False, indent: str = "") -> list[TextLine]:
    lines = textwrap.wrap(
        text, WRAP_CHARS, initial_indent=indent, subsequent_indent=" " * len(indent)
    ) or [""]
    return [TextLine(line, bold) for line in lines]


def facts(items: Iterable[Fact]) -> list[Unit]:
    return [FactRow(f) for f in items]


def table(t: Table, heading: str = "") -> list[Unit]:
    units: list[Unit] = [Heading(heading)] if heading else []
    if not t.rows:
        return [*units, TextLine("None.")]
    return [*units, TableHeader(t), *(TableRow(t, row) for row in t.rows)]


def figure(fig: charts.Figure) -> FigureBlock:
    """A chart as whole rows; a figure taller than a page is drawn smaller to fit one."""
    height_mm = fig.height * CONTENT_MM / fig.width
    return FigureBlock(fig, min(ROWS_PER_PAGE, max(1, math.ceil(height_mm / ROW_MM))))


def chart(fig: charts.Figure) -> FigureBlock:
    """A line chart: always ``CHART_ROWS`` rows, so charts count per page."""
    return FigureBlock(fig, CHART_ROWS)


def gallery(thumbs: Sequence[Thumbnail], heading: str) -> list[Unit]:
    if not thumbs:
        return []
    strips = [
        ThumbStrip(tuple(thumbs[i : i + THUMBS_PER_STRIP]))
        for i in range(0, len(thumbs), THUMBS_PER_STRIP)
    ]
    return [Heading(heading), *strips]


def paginate(sections: Iterable[Section]) -> list[Page]:
    """Every section from a new page; units in order, moved on whole when they do not fit."""
    pages: list[Page] = []
    for section in sections:
        current: list[Unit] = []
        used = 0
        continued: Table | None = None
        for unit in section.units or (TextLine("Nothing to show."),):
            if used + unit.rows > ROWS_PER_PAGE and current:
                pages.append(Page(section.title, tuple(current), continued))
                last = current[-1]
                carried = isinstance(unit, TableRow) and isinstance(last, (TableRow, TableHeader))
                continued = unit.table if carried else None  # type: ignore[union-attr]
                current, used = [], 0
            current.append(unit)
            used += unit.rows
        pages.append(Page(section.title, tuple(current), continued))
    return pages


# ----------------------------------------------------------------------------- plans


def run_sections(data: RunReportData) -> list[Section]:
    overview: list[Unit] = [TextLine(data.title, True, 16.0, 2)]
    overview += wrapped(f"Status: {data.status}." + (f" {data.reason}" if data.reason else ""))
    if data.hint:
        overview += wrapped(data.hint)
    overview += [Heading("Results"), *facts(data.headline), Heading("Run"), *facts(data.overview)]
    for note in data.notes:
        overview += wrapped(note)

    dataset: list[Unit] = [*facts(data.dataset), *table(data.classes, "Classes")]
    dataset += gallery(data.examples, "One image of each class")

    a = data.architecture
    architecture: list[Unit] = facts(a.facts)
    if a.note:
        architecture += wrapped(a.note)
    if a.layers is not None:
        architecture += table(a.layers, "Layers (per image)")

    curves: list[Unit] = [chart(charts.line_chart(c)) for c in data.curves] or [
        TextLine("The run logged no metrics.")
    ]
    system: list[Unit] = [chart(charts.line_chart(c)) for c in data.system]
    system = (
        [*system, *table(data.system_table, "Gauges")]
        if system
        else [TextLine("No system samples were recorded for this run.")]
    )

    b = data.bottleneck
    bottleneck: list[Unit] = []
    if b.title:
        bottleneck += wrapped(b.title, bold=True)
        bottleneck += [line for e in b.evidence for line in wrapped(e, indent="• ")]
        if b.recommendations:
            bottleneck.append(Heading("What to try"))
            bottleneck += [line for r in b.recommendations for line in wrapped(r, indent="• ")]
        if b.others:
            bottleneck += wrapped("Also: " + "; ".join(b.others))
    else:
        bottleneck += wrapped(b.note)

    e = data.evaluation
    evaluation: list[Unit] = []
    if e.evaluated:
        evaluation += facts(e.facts)
        if e.per_class is not None:
            evaluation += table(e.per_class, "Per class")
        if e.confusion:
            evaluation.append(figure(charts.confusion_heatmap(e.classes, e.confusion)))
        evaluation += gallery(e.mistake_images, "Costliest mistakes")
        if e.mistakes is not None and e.mistakes.rows:
            evaluation += table(e.mistakes, "Mistakes, highest loss first")
    else:
        evaluation += wrapped(e.note)

    environment: list[Unit] = [*facts(data.environment), *table(data.artifacts, "Files")]
    return [
        Section("Overview", tuple(overview)),
        *optimize_sections(data),
        Section("Dataset", tuple(dataset)),
        Section("Architecture", tuple(architecture)),
        Section("Hyperparameters", tuple(table(data.hyperparameters))),
        Section("Training curves", tuple(curves)),
        Section("System use", tuple(system)),
        Section("Bottleneck", tuple(bottleneck)),
        Section("Evaluation", tuple(evaluation)),
        Section("Environment", tuple(environment)),
    ]


def optimize_sections(data: RunReportData) -> list[Section]:
    """The optimize decisions, for a run that ``cnn-lab optimize`` trained (else nothing)."""
    o = data.optimize
    if o is None:
        return []
    units: list[Unit] = facts(o.facts)
    if o.note:
        units += wrapped(o.note)
    # Sentences, wrapped: a table cell would cut the evidence, which is the point.
    for heading, rows in (
        ("Decisions and their evidence", o.decisions.rows),
        ("Tried and rejected", o.rejected.rows),
    ):
        units.append(Heading(heading))
        for phase, choice, why in rows:
            units += wrapped(f"[{phase}] {choice}: {why}", indent="• ")
        if not rows:
            units.append(TextLine("None."))
    units += table(o.phases, "Phases")
    return [Section("Optimize: why this recipe", tuple(units))]


def sweep_sections(data: SweepReportData) -> list[Section]:
    overview: list[Unit] = [TextLine(data.title, True, 16.0, 2), *facts(data.facts)]
    for note in data.notes:
        overview += wrapped(note)
    if data.history is not None:
        overview.append(chart(charts.line_chart(data.history)))
    importance: list[Unit]
    if data.importance:
        importance = [
            figure(charts.bar_chart("Share of the value's variance", data.importance)),
            *table(
                Table(
                    ("Parameter", "Importance"),
                    tuple((name, f"{share:.1%}") for name, share in data.importance),
                    (False, True),
                )
            ),
        ]
    else:
        importance = wrapped(data.importance_note)
    return [
        Section("Overview", tuple(overview)),
        Section("Trials", tuple(table(data.trials))),
        Section(
            "Parallel coordinates",
            (figure(charts.parallel_coordinates(data.axes, data.colour)),),
        ),
        Section("Parameter importance", tuple(importance)),
        Section("Search space", (*table(data.space), *table(data.base, "Base run"))),
        Section("Runs", tuple(table(data.runs))),
    ]


def plan_run(data: RunReportData) -> list[Page]:
    return paginate(run_sections(data))


def plan_sweep(data: SweepReportData) -> list[Page]:
    return paginate(sweep_sections(data))
