"""Field bounds come from a spec field's own constraints, and rates step on the 1-2-5 grid."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from cnn_lab.app.models.field_bounds import field_bounds, next_125
from cnn_lab.engine.specs import TrainSpec


class Sample(BaseModel):
    count: int = Field(1, ge=1, le=50)
    rate: float = Field(0.1, gt=0, lt=1)
    weight: float = 0.0
    floor_only: int = Field(0, ge=-3)


def test_closed_bounds_are_the_fields_own() -> None:
    assert field_bounds(Sample.model_fields["count"], 1, (0, 100)) == (1.0, 50.0)


def test_open_bounds_move_in_by_the_step() -> None:
    low, high = field_bounds(Sample.model_fields["rate"], 1e-6, (0, 100))
    assert low == pytest.approx(1e-6) and high == pytest.approx(1 - 1e-6)


def test_a_side_the_field_leaves_open_takes_the_forms_default() -> None:
    assert field_bounds(Sample.model_fields["weight"], 0.01, (-1e6, 1e6)) == (-1e6, 1e6)
    assert field_bounds(Sample.model_fields["floor_only"], 1, (0, 9)) == (-3.0, 9)


def test_the_train_spec_is_read_as_written() -> None:
    low, _ = field_bounds(TrainSpec.model_fields["epochs"], 1, (0, 2**31 - 1))
    assert low == 1.0  # TrainSpec refuses 0 epochs, so the box starts at 1


def test_the_1_2_5_grid_up_and_down() -> None:
    value, seen = 1e-4, []
    for _ in range(4):
        value = next_125(value, True, 1e-6)
        seen.append(value)
    assert seen == [2e-4, 5e-4, 1e-3, 2e-3]
    assert next_125(3e-3, True, 1e-6) == 5e-3  # off the grid: the next point on it
    assert next_125(3e-3, False, 1e-6) == 2e-3
    assert next_125(1e-3, False, 1e-6) == 5e-4


def test_the_grid_ends_at_zero_and_starts_from_the_smallest() -> None:
    assert next_125(1e-6, False, 1e-6) == 0.0
    assert next_125(0.0, True, 1e-6) == 1e-6
    assert next_125(0.0, False, 1e-6) == 0.0
