"""The Data panel's form model, without Qt: the spec its values make, the text it shows, and
when a change re-imports rather than only re-drawing the augmentation preview."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cnn_lab.app.models.data_form import (
    AUTO_CHANNELS,
    MIN_LIMIT,
    DataForm,
    augment_key,
    augments,
    cancelled_text,
    import_key,
    imported_text,
    input_shape,
    normalise_source,
    shown_source,
    source_description,
    split_summary,
    value_text,
)
from cnn_lab.engine.data.samples import sample_description
from cnn_lab.engine.specs import DatasetSpec


def _values(**changes: Any) -> dict[str, Any]:
    """What the controls hold at their defaults, as plain values (0 = auto / all images)."""
    values: dict[str, Any] = {
        "source": "sample:shapes",
        "image_size": 0,
        "channels": AUTO_CHANNELS,
        "resize": "squash",
        "normalize": "auto",
        "limit": 0,
        "val_fraction": 0.2,
        "test_fraction": 0.0,
        "split_seed": 0,
        "class_balance": "none",
        "augment": [],
        "mixup_alpha": 0.0,
        "cutmix_alpha": 0.0,
    }
    return {**values, **changes}


def test_zero_means_no_value_and_a_small_limit_is_raised() -> None:
    spec, error = DataForm().spec(_values(limit=5, val_fraction=0.150000001))
    assert error == "" and spec is not None
    assert spec.image_size is None and spec.channels is None
    assert spec.limit == MIN_LIMIT
    assert spec.val_fraction == 0.15
    spec, _ = DataForm().spec(_values(image_size=32, channels=1, limit=0))
    assert spec is not None and (spec.image_size, spec.channels, spec.limit) == (32, 1, None)


def test_values_that_do_not_make_a_spec_say_why() -> None:
    spec, error = DataForm().spec(_values(val_fraction=0.5, test_fraction=0.5))
    assert spec is None
    assert "dataset settings" in error


def test_loaded_fields_no_control_sets_are_kept() -> None:
    form = DataForm()
    form.load(DatasetSpec(source="sample:shapes", folds=5, fold=2))
    assert form.passthrough == {"folds": 5, "fold": 2}
    spec, _ = form.spec(_values(split_seed=3))
    assert spec is not None and (spec.folds, spec.fold, spec.split_seed) == (5, 2, 3)


def test_normalisation_is_a_control_that_never_re_imports() -> None:
    form = DataForm()
    spec, _ = form.spec(_values(normalize="dataset"))
    assert spec is not None and spec.normalize == "dataset"
    form.import_key = import_key(spec)
    assert not form.needs_import(spec.model_copy(update={"normalize": "auto"}))
    assert value_text("normalize", "dataset") == "The training images' own"


def test_only_what_the_import_depends_on_re_imports() -> None:
    form = DataForm()
    spec = DatasetSpec(source="sample:shapes")
    assert form.needs_import(spec)
    form.import_key, form.augment_key = import_key(spec), augment_key(spec)
    balanced = spec.model_copy(update={"class_balance": "weighted_loss", "val_fraction": 0.3})
    assert not form.needs_import(balanced) and not form.needs_preview(balanced)
    # the split seed picks the limited subset, so it matters only with a limit
    assert not form.needs_import(spec.model_copy(update={"split_seed": 4}))
    limited = spec.model_copy(update={"limit": 100})
    assert form.needs_import(limited)
    form.import_key = import_key(limited)
    assert form.needs_import(limited.model_copy(update={"split_seed": 4}))
    form.import_key = import_key(spec)
    mixed = spec.model_copy(update={"mixup_alpha": 0.2})
    assert not form.needs_import(mixed) and form.needs_preview(mixed)
    assert augments(mixed) and not augments(spec)


def test_a_failed_source_goes_back_unless_someone_else_set_it() -> None:
    form = DataForm()
    assert not form.reverts("/data/new")  # nothing good to go back to yet
    form.good_source = "sample:shapes"
    assert form.reverts("/data/new")
    assert not form.reverts("sample:shapes")
    form.given_source = "/data/from-a-spec-file"
    assert not form.reverts("/data/from-a-spec-file")


def test_values_read_as_their_controls_show_them() -> None:
    assert value_text("channels", 1) == "Greyscale (1 channel)"
    assert value_text("channels", None) is None  # auto: the plain value stands for it
    assert value_text("class_balance", "weighted_loss") == "Class-weighted loss"
    assert value_text("image_size", None) == "auto"
    assert value_text("limit", None) == "all images"
    assert value_text("limit", 5000) == "5,000 images"
    assert value_text("test_fraction", 0.0) == "none"
    assert value_text("mixup_alpha", 0.0) == "off"
    assert value_text("mixup_alpha", 0.4) is None
    assert value_text("split_seed", 0) is None
    assert value_text("resize", "squash") not in (None, "squash")  # the registry's label


def test_sources_are_named_and_described() -> None:
    assert shown_source("sample:digits") == "Sample: digits"
    assert shown_source("/data/pets/train.zip") == "train.zip  (pets)"
    assert source_description("sample:digits") == sample_description("digits")
    assert source_description("sample:no-such-sample") == ""
    assert source_description("/data/pets") == "/data/pets"
    assert normalise_source("  sample:digits ") == "sample:digits"
    assert normalise_source("   ") == ""
    home = normalise_source("~/pets")
    assert home == os.path.join(os.path.expanduser("~"), "pets")
    assert normalise_source("pets") == str(Path.cwd() / "pets")


def test_the_status_and_split_texts() -> None:
    spec = DatasetSpec(source="sample:shapes", val_fraction=0.2, test_fraction=0.1)
    assert split_summary(None, spec) == ""
    assert split_summary(1000, spec) == "Splits: ≈ 700 train · 200 validation · 100 test"
    good = SimpleNamespace(
        blockers=[], images=1234, cache=SimpleNamespace(build_s=1.3), channels=3,
        image_size=32, classes={"a": 1, "b": 2},
    )  # fmt: skip
    assert imported_text(good, 2) == "Imported 1,234 images in 2 classes (1.3 s)."
    shape = input_shape(good)
    assert shape is not None and (shape.channels, shape.height, shape.classes) == (3, 32, 2)
    blocked = SimpleNamespace(**{**vars(good), "blockers": ["no images"]})
    assert "cannot be trained on yet" in imported_text(blocked, 2)
    assert input_shape(blocked) is None
    assert cancelled_text(False) == "Import cancelled."
    assert "previous import" in cancelled_text(True)
