"""The Data panel's form model: its labels and help, the spec its fields make, and its rules.

The panel is a view over this: it hands over what the controls hold, as plain values, and
shows what comes back (a DatasetSpec or the sentence saying why there is none, the text of a
value, the split summary, the status line). What the import depends on, and so when the
panel re-imports rather than only re-drawing the augmentation preview, is decided here too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_core import ValidationError  # not pydantic's: see the note below

from cnn_lab.engine.data.samples import sample_description
from cnn_lab.engine.models import InputShape
from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec, explain

# pydantic.ValidationError is pydantic_core's class. Importing it through ``pydantic`` before
# PySide6 leaves pydantic half-loaded when shiboken's import hook inspects modules, and the
# engine's specs then fail to import (seen with ``python -m cnn_lab.app.panels.data_panel``).

SAMPLE_PREFIX = "sample:"
AUTO_CHANNELS = 0
"""The channel box's data for auto (a QComboBox cannot find None among its items)."""
IMPORT_DELAY_MS = 300
"""A changed setting re-imports this long after the last change: spinning a box is one import."""
PREVIEW_DELAY_MS = 120
"""The same for re-drawing the augmentation preview, which is quicker."""
MIN_LIMIT = 20
"""The fewest images "Use at most" asks for: fewer cannot fill a validation split per class."""

LABELS: dict[str, str] = {
    "source": "Source",
    "image_size": "Image size",
    "channels": "Channels",
    "resize": "Resize",
    "normalize": "Normalise with",
    "limit": "Use at most",
    "val_fraction": "Validation share",
    "test_fraction": "Test share",
    "split_seed": "Split seed",
    "class_balance": "Class balance",
    "augment": "Augmentation",
    "mixup_alpha": "Mixup α",
    "cutmix_alpha": "CutMix α",
}
"""The form's labels, which also name undo steps ("Change Image size to 64")."""
UNDO_NAMES = {**LABELS, "limit": "Image limit"}

HELP: dict[str, str] = {
    "source": "The images to train on: a built-in sample (small, imports in a second, for "
    "trying recipes fast) or a folder, archive, CSV or .npz you opened. Hover a sample for "
    "what it holds.",
    "image_size": "Side of the square images are resized to. Auto keeps small images of one "
    "size as they are and otherwise picks from their sizes, never above 64 px (the report "
    "says why). Larger images can be more accurate but train slower (compute grows with the "
    "square of the side) and take more memory.",
    "channels": "Colour (RGB) or greyscale; auto is greyscale when every image is. Greyscale "
    "stores and reads a third of the data, a little faster, but loses the colour that often "
    "matters for accuracy on photos; fine for digits, scans and X-rays.",
    "resize": "How an image that is not square becomes square. Squashing keeps everything "
    "but distorts shapes; cropping and padding keep shapes. No effect on training speed.",
    "normalize": "The per-channel mean and std images are normalised with. Auto: those the "
    "network's pretrained weights were trained with, when it starts from published weights "
    "(what the weights saw, so their features fit; usually the most accurate), else the "
    "training images' own. No speed cost.",
    "limit": "Train on a stratified subset: faster trials for comparing recipes, lower "
    "accuracy than the whole dataset.",
    "val_fraction": "Share of each class held out to measure validation accuracy: more gives "
    "a steadier accuracy figure, fewer images to train on.",
    "test_fraction": "Share of each class kept back and evaluated once, at the end: an "
    "honest accuracy figure that no choice was tuned on.",
    "split_seed": "Which images land in which split (and in the limited subset).",
    "class_balance": "Counter class imbalance by weighting the loss or sampling: better "
    "accuracy on rare classes, sometimes a little lower overall accuracy. No speed cost.",
}
"""What each preprocessing option does, and what it costs or buys in speed and accuracy."""

CHANNELS = (
    (AUTO_CHANNELS, "Auto"),
    (3, "RGB (3 channels)"),
    (1, "Greyscale (1 channel)"),
)
NORMALIZE = (
    ("auto", "Auto (the weights' or the images')"),
    ("dataset", "The training images' own"),
)
CLASS_BALANCE = (
    ("none", "None"),
    ("weighted_loss", "Class-weighted loss"),
    ("weighted_sampler", "Class-weighted sampler"),
)
EMPTY_TEXT = {
    "image_size": "auto",
    "limit": "all images",
    "test_fraction": "none",
    "mixup_alpha": "off",
    "cutmix_alpha": "off",
}
"""What a number box shows at its lowest value, which means "no value" (or none) in the spec."""


def resize_policies() -> list[tuple[str, str]]:
    """(name, label) of each resize policy, from the engine's registry."""
    from cnn_lab.engine.data.resize import resize_policy_label, resize_policy_names

    return [(name, resize_policy_label(name)) for name in resize_policy_names()]


def choices(name: str) -> tuple[tuple[Any, str], ...]:
    """The (value, label) items of the combo that sets field ``name``; () for other fields."""
    if name == "channels":
        return CHANNELS
    if name == "resize":
        return tuple(resize_policies())
    if name == "class_balance":
        return CLASS_BALANCE
    if name == "normalize":
        return NORMALIZE
    return ()


def value_text(name: str, value: Any) -> str | None:
    """A field's value as its control shows it ("Greyscale (1 channel)", "auto", "5,000
    images"); None where the plain value will do."""
    items = choices(name)
    if items:
        # None (auto channels) is not among a combo's items: the plain value stands for it.
        return next((label for data, label in items if data == value and value is not None), None)
    if not value and name in EMPTY_TEXT:
        return EMPTY_TEXT[name]
    if name == "limit":
        return f"{value:,} images"
    return None


def is_sample(source: str) -> bool:
    return source.startswith(SAMPLE_PREFIX)


def normalise_source(path: str) -> str:
    """What an opened path, drop or typed ``sample:NAME`` names as a source: an absolute
    path (``~`` expanded), or the sample as it is; empty for nothing."""
    path = path.strip()
    if not path or is_sample(path):
        return path
    return os.path.abspath(os.path.expanduser(path))


def shown_source(source: str) -> str:
    """A source as the combo and the status line name it: the sample, or file and folder."""
    if is_sample(source):
        return f"Sample: {source[len(SAMPLE_PREFIX) :]}"
    path = Path(source)
    parent = path.parent.name
    return f"{path.name}  ({parent})" if parent else path.name or source


def source_description(source: str) -> str:
    """The line under the source: what a sample holds, or the full path of anything else."""
    if not is_sample(source):
        return source
    try:
        return sample_description(source[len(SAMPLE_PREFIX) :])
    except Exception:  # an unknown sample name: the import says so in a sentence
        return ""


def import_key(spec: DatasetSpec) -> tuple[Any, ...]:
    """What ``prepare_dataset``'s result depends on; other fields never need a re-import."""
    return (
        spec.source,
        spec.image_size,
        spec.channels,
        spec.resize,
        spec.limit,
        spec.split_seed if spec.limit is not None else None,
    )


def augment_key(spec: DatasetSpec) -> tuple[Any, ...]:
    """What the "After augmentation" preview depends on, besides the images and the seed."""
    return (tuple((s.name, s.strength) for s in spec.augment), spec.mixup_alpha, spec.cutmix_alpha)


def augments(spec: DatasetSpec) -> bool:
    """Whether training changes the images at all (and so whether Re-roll means anything)."""
    return bool(spec.augment) or spec.mixup_alpha > 0 or spec.cutmix_alpha > 0


def split_summary(images: int | None, spec: DatasetSpec) -> str:
    """``Splits: ≈ 800 train · 150 validation · 50 test``; empty before anything imported."""
    if images is None:
        return ""
    val = round(images * spec.val_fraction)
    test = round(images * spec.test_fraction)
    return f"Splits: ≈ {images - val - test:,} train · {val:,} validation · {test:,} test"


def imported_text(report: Any, classes: int) -> str:
    """The status line after an import that completed: done, or why it cannot train yet."""
    if report.blockers:
        return "This dataset cannot be trained on yet: see the report below."
    return f"Imported {report.images:,} images in {classes} classes ({report.cache.build_s:.1f} s)."


def input_shape(report: Any) -> InputShape | None:
    """The input an imported dataset gives a network; None while the report has blockers."""
    if report.blockers:
        return None
    size = report.image_size
    return InputShape(
        channels=report.channels, height=size, width=size, classes=len(report.classes)
    )


def weights_expect(architecture: ArchitectureSpec, dataset: DatasetSpec) -> str:
    """What the network's published weights expect, and whether the settings follow them.

    "" without published weights. The catalogue is metadata (no network), but reading it
    imports torchvision (or timm); by the time a spec names weights, the Architecture panel's
    catalogue or summary has usually imported it already.
    """
    if not architecture.weights:
        return ""
    from cnn_lab.engine.models.published_weights import expected_preprocessing

    expected = expected_preprocessing(architecture)
    if expected is None:
        return ""
    notes = []
    if expected.size is not None:
        notes.append(
            f"Image size auto uses their {expected.size} px."
            if dataset.image_size is None
            else f"Your image size ({dataset.image_size} px) is used instead of their "
            f"{expected.size} px."
        )
    if expected.mean is not None:
        notes.append(
            "Images are normalised with their mean and std."
            if dataset.normalize == "auto"
            else "Images are normalised with this dataset's own mean and std instead."
        )
    return " ".join([expected.sentence, *notes])


def cancelled_text(has_report: bool) -> str:
    kept = " The report below is from the previous import." if has_report else ""
    return "Import cancelled." + kept


@dataclass
class DataForm:
    """What the Data panel remembers between edits: loaded fields no control sets, the keys of
    the import and preview last started, and which sources stay after a failed import."""

    passthrough: dict[str, Any] = field(default_factory=dict)
    """Loaded fields no control sets (k-fold's), carried into every spec the form makes."""
    import_key: tuple[Any, ...] | None = None
    """Of the import started last; None makes the next change re-import."""
    augment_key: tuple[Any, ...] | None = None
    """Of the preview shown or running."""
    good_source: str | None = None
    """The source of the report shown."""
    given_source: str | None = None
    """A source set from the state by someone else: kept even if it fails to import."""
    preview_seed: int = 0

    def load(self, spec: DatasetSpec) -> None:
        self.passthrough = {k: v for k, v in spec.model_dump().items() if k not in LABELS}

    def fields(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The controls' plain values as DatasetSpec fields (not yet validated).

        Zero in a number box or combo means "no value" (auto, all images); a limit below
        MIN_LIMIT is raised to it; fractions are rounded as the boxes show them.
        """
        limit = values["limit"] or None
        return {
            **self.passthrough,
            **values,
            "source": values["source"] or "",
            "val_fraction": round(values["val_fraction"], 4),
            "test_fraction": round(values["test_fraction"], 4),
            "limit": max(limit, MIN_LIMIT) if limit is not None else None,
            "image_size": values["image_size"] or None,
            "channels": values["channels"] or None,
        }

    def spec(self, values: Mapping[str, Any]) -> tuple[DatasetSpec | None, str]:
        """The spec the controls make, or None and the sentence saying why they do not."""
        try:
            return DatasetSpec.model_validate(self.fields(values)), ""
        except ValidationError as exc:
            return None, explain(exc, what="dataset settings")

    def needs_import(self, spec: DatasetSpec) -> bool:
        return import_key(spec) != self.import_key

    def needs_preview(self, spec: DatasetSpec) -> bool:
        return augment_key(spec) != self.augment_key

    def reverts(self, current: str | None) -> bool:
        """Whether a failed or cancelled import of ``current`` goes back to the good source:
        not for the first import, the good source itself, or a source someone else set."""
        return self.good_source is not None and current not in (
            self.good_source,
            self.given_source,
        )
