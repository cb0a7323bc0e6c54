"""What a report shows, gathered once: frozen, plain values, no store and no torch.

The HTML and PDF writers lay out the same ``RunReportData``/``SweepReportData``, so the two
formats can never disagree. Text is kept raw (a name is ``<script>`` if that is what the
person typed); escaping is the HTML writer's job, not the data's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Fact:
    """One labelled value, already formatted for a person ("Best val accuracy", "93.1%")."""

    label: str
    value: str


@dataclass(frozen=True)
class Table:
    """Rows of formatted cells; ``numeric`` marks the columns to right-align."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...] = ()
    numeric: tuple[bool, ...] = ()

    def is_numeric(self, index: int) -> bool:
        return index < len(self.numeric) and self.numeric[index]


@dataclass(frozen=True)
class Series:
    """One line of a chart. NaN in ``y`` is a gap; ``points`` draws markers, no line."""

    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    style: Literal["line", "points"] = "line"


@dataclass(frozen=True)
class ChartData:
    """A line chart's numbers: every series shares the axes."""

    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]


@dataclass(frozen=True)
class Thumbnail:
    """A small PNG with a caption (and a longer description for a tooltip or a table)."""

    png: bytes
    caption: str
    detail: str = ""


@dataclass(frozen=True)
class ArchitectureInfo:
    """Parameters, compute, memory and the layer table; ``note`` says why something is missing."""

    facts: tuple[Fact, ...] = ()
    layers: Table | None = None
    note: str = ""


@dataclass(frozen=True)
class BottleneckInfo:
    """The whole run's verdict as the monitor saved it, or a note saying there is none."""

    title: str = ""
    verdict: str = ""
    evidence: tuple[str, ...] = ()
    recommendations: tuple[str, ...] = ()
    others: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class EvaluationInfo:
    """The stored evaluation (``cnn-lab evaluate``), or ``note`` telling how to make one."""

    evaluated: bool
    facts: tuple[Fact, ...] = ()
    per_class: Table | None = None
    classes: tuple[str, ...] = ()
    confusion: tuple[tuple[int, ...], ...] = ()
    mistakes: Table | None = None
    mistake_images: tuple[Thumbnail, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class OptimizeInfo:
    """Why the run's recipe is what it is, when ``cnn-lab optimize`` chose it: each decision
    with its measured evidence, what was tried and rejected, and each phase's time."""

    facts: tuple[Fact, ...]
    decisions: Table
    rejected: Table
    phases: Table
    note: str = ""


@dataclass(frozen=True)
class RunReportData:
    """Everything a run report shows, in the order it shows it."""

    run_id: int
    name: str
    status: str
    reason: str | None
    hint: str | None
    headline: tuple[Fact, ...]
    overview: tuple[Fact, ...]
    dataset: tuple[Fact, ...]
    classes: Table
    examples: tuple[Thumbnail, ...]
    architecture: ArchitectureInfo
    hyperparameters: Table
    curves: tuple[ChartData, ...]
    system: tuple[ChartData, ...]
    system_table: Table
    bottleneck: BottleneckInfo
    evaluation: EvaluationInfo
    environment: tuple[Fact, ...]
    artifacts: Table
    generated: str
    notes: tuple[str, ...] = ()
    """What could not be gathered (images unreadable, architecture not buildable), as sentences."""
    optimize: OptimizeInfo | None = None
    """Present for a run trained by ``cnn-lab optimize`` (a trial or the final run)."""

    @property
    def title(self) -> str:
        return f"Run {self.run_id}" + (f": {self.name}" if self.name else "")


@dataclass(frozen=True)
class ParallelAxis:
    """One vertical axis of a parallel-coordinates plot: a value per trial (None: missing)."""

    label: str
    values: tuple[float | str | None, ...]
    log: bool = False


@dataclass(frozen=True)
class SweepReportData:
    """Everything a sweep report shows: the trials, how they spread, what mattered."""

    experiment_id: int
    name: str
    facts: tuple[Fact, ...]
    trials: Table
    axes: tuple[ParallelAxis, ...]
    colour: tuple[float | None, ...]
    """Each trial's value, colouring its line in the parallel-coordinates plot."""
    importance: tuple[tuple[str, float], ...]
    importance_note: str
    history: ChartData | None
    space: Table
    base: Table
    runs: Table
    generated: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def title(self) -> str:
        return f"Sweep {self.name}"
