"""SearchSpec: which fields of a RunSpec a sweep varies, how it picks points, when it stops.

Frozen and JSON round-trippable like every spec, because a sweep crosses process boundaries
(job processes, Optuna workers sharing one storage) and is saved beside its trials. It is
validated against its own base RunSpec when it is built, so a misspelt path or a grid that
cannot be enumerated is refused before a single trial trains.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError, model_validator

from cnn_lab.engine.errors import SpecError
from cnn_lab.engine.search.paths import apply, check_path
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.specs.base import Spec, load_json, spec_error

# Finite floats only: JSON has no NaN or infinity, so a sweep holding one could not be saved
# beside its trials and read back the same.
Scalar = bool | int | Annotated[float, Field(allow_inf_nan=False)] | str | None
Strategy = Literal["grid", "random", "tpe"]
Pruner = Literal["none", "median", "halving", "hyperband"]
Metric = Literal["val.accuracy", "val.loss"]

#: Whether a larger value of the metric is better; Optuna's study direction follows it.
MAXIMISE: dict[str, bool] = {"val.accuracy": True, "val.loss": False}

#: Dataset fields a cross-validating search sets itself, one run per fold.
CV_PATHS = frozenset({"dataset.folds", "dataset.fold"})

#: A grid larger than this is almost surely a mistake (and would take days).
MAX_GRID_POINTS = 10_000


class RangeSpec(Spec):
    """A numeric interval: ``low..high``, optionally on a log scale, in steps, or integers."""

    low: float
    high: float
    log: bool = False
    step: Annotated[float | None, Field(gt=0.0, allow_inf_nan=False)] = None
    integer: bool = False

    @model_validator(mode="after")
    def _sound(self) -> RangeSpec:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("low and high must be finite numbers")
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not be above high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs a low above 0")
        if self.log and self.step is not None and not (self.integer and self.step == 1):
            raise ValueError("a log range cannot have a step; give the values as a list instead")
        if self.integer:
            for name, value in (("low", self.low), ("high", self.high), ("step", self.step)):
                if value is not None and value != int(value):
                    raise ValueError(f"an integer range needs a whole {name} (got {value})")
        return self

    def _grid_step(self) -> float | None:
        # An integer range steps by 1 unless told otherwise; a log range only ever has step 1
        # (integers), so stepping linearly is right for both.
        return self.step if self.step is not None else (1 if self.integer else None)

    def points(self) -> int | None:
        """How many points a grid visits, counted without listing them; None if continuous.

        A range of 1e300 in steps of 1e-300 is a valid range but not a grid anyone can run;
        its count is capped at 2**62 (far above MAX_GRID_POINTS), never an overflow or an
        attempt to list it.
        """
        step = self._grid_step()
        if step is None:
            return None
        span = (self.high - self.low) / step
        return math.floor(min(span, 2.0**62) + 1e-9) + 1

    def grid(self) -> list[float] | list[int] | None:
        """The points a grid visits, or None when the range is continuous (no step) or too
        fine to list (more than MAX_GRID_POINTS points, which no grid search accepts)."""
        step = self._grid_step()
        count = self.points()
        if step is None or count is None or count > MAX_GRID_POINTS:
            return None
        if self.integer:
            return [int(self.low) + i * int(step) for i in range(count)]
        # Rounded so that 0.1 + 2 * 0.1 shows as 0.3 in the trial's parameters.
        return [round(self.low + i * step, 12) for i in range(count)]


class ParamSpec(Spec):
    """One searched field: a dotted path into the RunSpec and exactly one way to pick values.

    ``values`` is an ordered list (numbers, usually), ``choices`` an unordered set of options
    (an optimizer name, a precision); samplers treat both as categories. ``range`` is an
    interval that random and TPE sample from and a grid steps through.
    """

    path: Annotated[str, Field(min_length=1, max_length=200)]
    values: tuple[Scalar, ...] | None = None
    range: RangeSpec | None = None
    choices: tuple[Scalar, ...] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ParamSpec:
        given = [k for k in ("values", "range", "choices") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"{self.path!r} needs exactly one of values, range or choices "
                f"(got {', '.join(given) or 'none'})"
            )
        options = self.values if self.values is not None else self.choices
        if options is not None:
            if not options:
                raise ValueError(f"{self.path!r} has an empty list; give at least one value")
            if len(set(map(repr, options))) != len(options):
                raise ValueError(f"{self.path!r} lists a value twice; each value once is enough")
        return self

    def grid(self) -> list[Any] | None:
        """Every value a grid visits, or None for a continuous range."""
        if self.range is not None:
            return self.range.grid()
        return list(self.values if self.values is not None else self.choices or ())

    def points(self) -> int | None:
        """How many values a grid visits (without listing a range's), or None if continuous."""
        if self.range is not None:
            return self.range.points()
        return len(self.values if self.values is not None else self.choices or ())


class SearchSpec(Spec):
    """A sweep: a base run, the fields that vary, the strategy, pruning and the budget.

    ``trials`` is the total budget of finished trials in the study (resuming counts those
    already done); a grid defaults to its size. ``timeout_s`` bounds one invocation's wall
    time. ``seeds`` repeats each trial with seeds ``base.train.seed + i`` and scores the mean,
    so a lucky seed does not pick the winner. ``folds`` cross-validates instead: each trial
    trains one run per fold (``dataset.folds = k``, ``dataset.fold = 0..k-1``) and scores
    the mean over folds, with their spread beside it.
    """

    schema_version: int = 1
    name: Annotated[str, Field(max_length=100)] = ""
    base: RunSpec
    params: Annotated[tuple[ParamSpec, ...], Field(min_length=1, max_length=50)]
    strategy: Strategy = "tpe"
    pruner: Pruner = "none"
    prune_startup_trials: Annotated[int, Field(ge=0, le=1000)] = 2
    """Trials that always run to the end before the median pruner judges others."""
    prune_warmup_epochs: Annotated[int, Field(ge=0, le=10_000)] = 1
    """Epochs a trial always trains before the median pruner may stop it."""
    metric: Metric = "val.accuracy"
    trials: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    timeout_s: Annotated[float | None, Field(gt=0.0, allow_inf_nan=False)] = None
    seeds: Annotated[int, Field(ge=1, le=100)] = 1
    sampler_seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    folds: Annotated[int | None, Field(ge=2, le=20)] = None
    """k-fold cross-validation per trial; None trains one run on the base spec's split."""

    what: ClassVar[str] = "search spec"

    @model_validator(mode="after")
    def _consistent(self) -> SearchSpec:
        document = self.base.model_dump(mode="json")
        seen: set[str] = set()
        for param in self.params:
            problem = check_path(document, param.path)
            if problem is not None:
                raise ValueError(problem)
            if param.path in seen:
                raise ValueError(f"{param.path} is searched twice; list each field once")
            seen.add(param.path)
            if self.folds is not None and param.path in CV_PATHS:
                raise ValueError(
                    f"{param.path} is set by the search's folds, so it cannot also be searched"
                )
        if self.folds is not None and self.seeds > 1:
            raise ValueError(
                "cross-validation already repeats each trial once per fold; "
                "use seeds 1 with folds, or seeds without folds"
            )
        if self.strategy == "grid":
            for param in self.params:
                if param.points() is None:
                    raise ValueError(
                        f"a grid cannot step through the continuous range of {param.path}; "
                        "give it a step, a list of values, or use the random or tpe strategy"
                    )
            size = self.grid_size()
            if size > MAX_GRID_POINTS:
                raise ValueError(
                    f"the grid has {size:,} points (at most {MAX_GRID_POINTS:,}); "
                    "use fewer values or the tpe strategy"
                )
        elif self.trials is None and self.timeout_s is None:
            raise ValueError(f"a {self.strategy} search needs a budget: set trials or timeout_s")
        return self

    # ------------------------------------------------------------------ grid

    def grid_space(self) -> dict[str, list[Any]]:
        """Each path's grid values (only meaningful for the grid strategy)."""
        return {p.path: p.grid() or [] for p in self.params}

    def grid_size(self) -> int:
        """The number of grid points (0 with a continuous range), counted without listing."""
        return math.prod(param.points() or 0 for param in self.params)

    def grid_points(self) -> list[dict[str, Any]]:
        space = self.grid_space()
        return [
            dict(zip(space, combo, strict=True)) for combo in itertools.product(*space.values())
        ]

    def check_grid(self) -> None:
        """Build every grid point's RunSpec once, so a bad point fails before any training."""
        for point in self.grid_points():
            apply(self.base, point)

    # ------------------------------------------------------------------ identity

    @property
    def maximise(self) -> bool:
        return MAXIMISE[self.metric]

    def study_hash(self) -> str:
        """What makes two sweeps the same study: everything but the name and the budget."""
        payload = self.model_dump(mode="json", exclude={"name", "trials", "timeout_s"})
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def study_name(self) -> str:
        return self.name.strip() or f"sweep-{self.study_hash()[:8]}"

    def budget(self) -> int | None:
        """How many finished trials the study wants: ``trials``, capped by a grid's size.

        None for a search bounded only by ``timeout_s``.
        """
        if self.strategy == "grid":
            size = self.grid_size()
            return size if self.trials is None else min(self.trials, size)
        return self.trials

    @property
    def steps_per_trial(self) -> int:
        """Pruning steps one trial reports: its epochs, once per fold when cross-validating."""
        return self.base.train.epochs * (self.folds or 1)

    def trial_spec(
        self,
        params: Mapping[str, Any],
        number: int,
        seed_index: int = 0,
        fold: int | None = None,
    ) -> RunSpec:
        """The RunSpec one trial (one of its seed repeats, or one of its folds) trains.

        A fold goes through ``apply`` like any searched value, so the dataset spec's own
        checks (a fold below ``folds``) hold for it too.
        """
        name = f"{self.study_name()} #{number}"
        if fold is not None and self.folds is not None:
            params = {**params, "dataset.folds": self.folds, "dataset.fold": fold}
            name += f" fold {fold}"
        spec = apply(self.base, params, name=name)
        if seed_index:
            seed = (spec.train.seed + seed_index) % (2**31)
            spec = spec.model_copy(update={"train": spec.train.model_copy(update={"seed": seed})})
        return spec

    # ------------------------------------------------------------------ io

    def to_json(self, *, indent: int | None = None) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> SearchSpec:
        return cls.from_dict(load_json(text, what=cls.what))

    @classmethod
    def from_dict(cls, data: Any) -> SearchSpec:
        if not isinstance(data, dict):
            raise SpecError("The search spec must be a JSON object with base and params.")
        data = dict(data)
        if isinstance(data.get("base"), dict):
            data["base"] = RunSpec.from_dict(data["base"])  # RunSpec's migration and sentences
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise spec_error(exc, what="search spec") from None


__all__ = ["CV_PATHS", "MAXIMISE", "ParamSpec", "RangeSpec", "SearchSpec"]
