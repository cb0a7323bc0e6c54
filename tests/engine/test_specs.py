"""Specs: JSON round trip, sentences for bad input, schema versions.

Random documents (hypothesis) are fault cases: tests/faults/test_input_fuzz.py.
"""

from __future__ import annotations

import json

import pytest

from cnn_lab.engine.errors import SpecError
from cnn_lab.engine.specs import SCHEMA_VERSION, DatasetSpec, RunSpec, TrainSpec


def test_default_spec_round_trips_through_json() -> None:
    spec = RunSpec(name="first", tags=("a", "b"), train=TrainSpec(epochs=5, lr=0.01))
    again = RunSpec.from_json(spec.to_json())
    assert again == spec
    assert json.loads(spec.to_json())["schema_version"] == SCHEMA_VERSION


def test_specs_are_frozen() -> None:
    spec = RunSpec()
    with pytest.raises(Exception, match="frozen"):
        spec.train.epochs = 7  # type: ignore[misc]


def test_hash_ignores_name_and_tags_but_not_the_recipe() -> None:
    base = RunSpec()
    assert RunSpec(name="x", tags=("t",)).spec_hash() == base.spec_hash()
    assert RunSpec(train=TrainSpec(lr=0.1)).spec_hash() != base.spec_hash()


def test_bad_fields_are_named_in_one_sentence() -> None:
    with pytest.raises(SpecError) as info:
        RunSpec.from_dict({"train": {"lr": -1, "device": "gpu"}, "colour": "red"})
    message = str(info.value)
    assert "\n" not in message
    assert "train.lr" in message and "greater than 0" in message
    assert "train.device" in message and "cuda" in message
    assert "colour is not a known field" in message


def test_invalid_json_is_a_sentence() -> None:
    with pytest.raises(SpecError, match="not valid JSON"):
        RunSpec.from_json("{not json")


def test_newer_schema_is_refused_and_missing_version_means_first() -> None:
    with pytest.raises(SpecError, match="newer cnn-lab"):
        RunSpec.from_dict({"schema_version": SCHEMA_VERSION + 1})
    assert RunSpec.from_dict({}).schema_version == SCHEMA_VERSION


def test_blank_source_is_refused() -> None:
    with pytest.raises(SpecError, match=r"dataset\.source"):
        RunSpec.from_dict({"dataset": {"source": "   "}})
    assert DatasetSpec(source=" sample:shapes ").source == "sample:shapes"
