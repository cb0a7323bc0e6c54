"""The tools ``optimize`` chains, as one injectable bundle: the real tuners by default.

Each entry is the existing tool with its time bounded from outside: a stop flag that turns
true at the phase's deadline, a number of steps sized from the measured step time, or the
speed options worth probing. Tests plant fakes in their place (``Tuners(...)``) to check
the plan's arithmetic without torch work. ``real_tuners`` shares one decoded dataset between
the probes, because decoding is the slow part and every probe of a spec reads the same images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cnn_lab.engine.search import SearchSpec
    from cnn_lab.engine.search.study import SweepResult, Trainer, TrialOutcome
    from cnn_lab.engine.specs import RunSpec
    from cnn_lab.engine.tune.batch_size import BatchSizeResult
    from cnn_lab.engine.tune.epoch_time import EpochTime
    from cnn_lab.engine.tune.lr_finder import LRFinderResult
    from cnn_lab.engine.tune.speed_result import SpeedAdvice

Stop = Callable[[], bool]
StageProgress = Callable[[str, int, int], None]

EpochProbe = Callable[["RunSpec", Stop, StageProgress], "EpochTime"]
BatchCheck = Callable[["RunSpec", int, Stop, StageProgress], "BatchSizeResult"]
SpeedTuner = Callable[
    ["RunSpec", "Sequence[str] | None", float, Stop, StageProgress], "SpeedAdvice"
]
RateTuner = Callable[["RunSpec", int, Stop, StageProgress], "LRFinderResult"]


class SearchRunner(Protocol):
    """Trains a search's trials under an experiment (``search_phase.run_search``)."""

    def __call__(
        self,
        search: SearchSpec,
        db_path: str | Path,
        experiment_id: int,
        trainer: Trainer,
        should_stop: Stop,
        on_trial: Callable[[TrialOutcome], None],
        emit: Callable[[Any], None] = ...,
        *,
        first: Sequence[dict[str, Any]] = ...,
    ) -> SweepResult: ...


@dataclass(frozen=True)
class Tuners:
    """What each phase calls. ``train`` is ``run_job``'s call (search trials and final run)."""

    epoch: EpochProbe
    """One epoch's cost (bounded: a few steps and forward passes)."""
    batch: BatchCheck
    """The largest batch up to a limit that fits (bounded: the limit caps the sizes tried)."""
    speed: SpeedTuner
    """The speed advisor over the named options, each probe timed for at least the seconds."""
    rate: RateTuner
    """The LR range test in the given number of steps."""
    search: SearchRunner
    """A TPE sweep whose trials are recorded under the given experiment; ``emit`` receives
    every training event (the runner reads the epochs' real times from them), ``first`` the
    points to try before the sampler's own."""
    train: Trainer


def real_tuners() -> Tuners:
    """The real tuners, sharing the decoded dataset between their probes."""
    cache: dict[str, Any] = {}

    def prepared(spec: RunSpec, stop: Stop, progress: StageProgress) -> Any:
        from cnn_lab.engine.tune.probe import prepare

        key = spec.dataset.model_dump_json() + spec.architecture.model_dump_json()
        if key not in cache:
            cache[key] = prepare(
                spec.dataset, should_stop=stop, progress=progress, architecture=spec.architecture
            )
        return cache[key]

    def epoch(spec: RunSpec, stop: Stop, progress: StageProgress) -> EpochTime:
        from cnn_lab.engine.tune.epoch_time import measure_epoch_time

        prepared(spec, stop, progress)  # decode first, so the probe's setup time is a run's
        return measure_epoch_time(spec, steps=4, warmup=2, should_stop=stop, progress=progress)

    def batch(spec: RunSpec, limit: int, stop: Stop, progress: StageProgress) -> BatchSizeResult:
        from cnn_lab.engine.tune.batch_size import find_max_batch

        data = prepared(spec, stop, progress)
        return find_max_batch(spec, limit=limit, prepared=data, should_stop=stop, progress=progress)

    def speed(
        spec: RunSpec,
        options: Sequence[str] | None,
        min_seconds: float,
        stop: Stop,
        progress: StageProgress,
    ) -> SpeedAdvice:
        from cnn_lab.engine.tune.speed import advise

        data = prepared(spec, stop, progress)
        return advise(
            spec,
            options=options,
            warmup=2,
            steps=4,
            min_seconds=min_seconds,
            prepared=data,
            should_stop=stop,
            progress=progress,
        )

    def rate(spec: RunSpec, steps: int, stop: Stop, progress: StageProgress) -> LRFinderResult:
        from cnn_lab.engine.tune.lr_finder import lr_range_test

        data = prepared(spec, stop, progress)
        return lr_range_test(spec, steps=steps, prepared=data, should_stop=stop, progress=progress)

    from cnn_lab.engine.jobs.job import run_job
    from cnn_lab.engine.optimize.search_phase import run_search

    return Tuners(epoch, batch, speed, rate, run_search, run_job)


__all__ = ["Stop", "Tuners", "real_tuners"]
