"""What data a run trains on, how it is prepared, split and augmented."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from cnn_lab.engine.specs.base import Spec

# Names checked against the registries in engine/data when data is prepared; kept as plain
# strings here so specs load without Pillow or torch (the GUI imports specs at start-up).
RESIZE_POLICIES = ("squash", "center_crop", "pad")


class AugmentStep(Spec):
    """One augmentation from the registry in engine/data/augment.py, at a strength in 0..1."""

    name: Annotated[str, Field(min_length=1, max_length=40)]
    strength: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5

    @field_validator("name")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class DatasetSpec(Spec):
    """A data source and how a run prepares, splits and augments it.

    ``source`` is ``sample:NAME`` for a built-in generated dataset, or a path: a folder with one
    sub-folder per class, a CSV of ``path,label``, a zip or tar archive of either, or a NumPy
    ``.npz`` with images and labels.
    """

    source: Annotated[str, Field(min_length=1, max_length=4096)] = "sample:shapes"
    val_fraction: Annotated[float, Field(gt=0.0, lt=0.9)] = 0.2
    test_fraction: Annotated[float, Field(ge=0.0, lt=0.9)] = 0.0
    """A held-out share evaluated once, at the end; 0 for none."""
    split_seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    folds: Annotated[int | None, Field(ge=2, le=20)] = None
    """k-fold cross-validation: the images not held out for testing are dealt into this many
    stratified folds and ``fold`` validates (``val_fraction`` is then unused); None for one
    plain validation split."""
    fold: Annotated[int, Field(ge=0, lt=20)] = 0
    """Which fold validates (0-based), when ``folds`` is set."""
    limit: Annotated[int | None, Field(ge=20, le=10_000_000)] = None
    """Use at most this many images (a stratified subset): for quick trials."""

    image_size: Annotated[int | None, Field(ge=8, le=1024)] = None
    """Square side images are resized to; None is auto, chosen from the images (at most 64 for
    files: their own size when small and alike; see engine/data/auto_preprocess.py)."""
    channels: Literal[1, 3] | None = None
    """3 (RGB) or 1 (greyscale); None is auto: 1 when every image is greyscale, else 3. Specs
    stored before auto existed all name their channels (3), so their hashes are unchanged."""
    resize: str = "squash"
    """How an image of another aspect ratio meets the square: squash, center_crop or pad."""
    normalize: Literal["auto", "dataset"] = "auto"
    """The per-channel mean and std images are normalised with. ``auto``: those the network's
    pretrained weights were trained with (ImageNet's, for most) when it starts from published
    weights that say so, else the training images' own; ``dataset``: always the training
    images' own."""

    augment: tuple[AugmentStep, ...] = ()
    mixup_alpha: Annotated[float, Field(ge=0.0, le=10.0)] = 0.0
    cutmix_alpha: Annotated[float, Field(ge=0.0, le=10.0)] = 0.0
    class_balance: Literal["none", "weighted_loss", "weighted_sampler"] = "none"
    """Counter class imbalance by weighting the loss or by sampling rare classes more often."""

    what: ClassVar[str] = "dataset spec"

    @field_validator("source")
    @classmethod
    def _source_is_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a data source such as 'sample:shapes' or a folder")
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value.strip()

    @field_validator("resize")
    @classmethod
    def _resize_is_known(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in RESIZE_POLICIES:
            raise ValueError(f"must be one of {', '.join(RESIZE_POLICIES)}")
        return value

    @model_validator(mode="after")
    def _splits_leave_training_data(self) -> DatasetSpec:
        if self.val_fraction + self.test_fraction > 0.8:
            raise ValueError(
                "val_fraction and test_fraction together must leave at least 20% for training"
            )
        if self.folds is not None and self.fold >= self.folds:
            raise ValueError(
                f"fold {self.fold} does not exist with {self.folds} folds (they are numbered "
                f"0 to {self.folds - 1})"
            )
        if self.folds is None and self.fold != 0:
            raise ValueError("fold is set but folds is not: set folds for cross-validation")
        return self
