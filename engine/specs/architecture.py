"""Which network a run trains: a preset, a stack of layers built by hand, a timm model, or a
PyTorch module class from the person's own file; and the weights it starts from."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from cnn_lab.engine.specs.base import Spec
from cnn_lab.engine.specs.layers import MAX_LAYERS, LayerSpec

CUSTOM = "custom"
TIMM = "timm"
"""``preset`` for a timm model: ``timm_model`` names it (needs the ``cnn-lab[timm]`` extra)."""
MODULE = "module"
"""``preset`` for the person's own module class: ``module`` holds it, code and all."""

_NAME = r"^[A-Za-z0-9_\-.]*$"
MAX_MODULE_BYTES = 2 * 1024 * 1024
"""A module file larger than this is refused: the whole file is stored with each run."""


class ModuleSource(Spec):
    """A ``torch.nn.Module`` subclass from a Python file, recorded whole.

    The file's text is kept in the spec (``code``, with its ``sha256``), so resume, evaluate,
    predict, export and reports rebuild exactly the network that trained, even after the file
    changed or vanished; ``path`` only says where it came from. The class is called as
    ``ClassName(**kwargs)``, plus ``num_classes``/``in_channels`` when its signature takes them.
    """

    path: Annotated[str, Field(min_length=1, max_length=4096)]
    class_name: Annotated[
        str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    ]
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """JSON values only; each can be swept like any other field (architecture.module.kwargs.N)."""
    code: Annotated[str, Field(max_length=MAX_MODULE_BYTES)] = ""
    sha256: Annotated[str, Field(max_length=64)] = ""

    what: ClassVar[str] = "module source"

    @model_validator(mode="after")
    def _code_matches_its_hash(self) -> ModuleSource:
        if self.code and self.sha256 and code_sha256(self.code) != self.sha256:
            raise ValueError(
                "the module's recorded code does not match its sha256: the spec was edited "
                "by hand or damaged"
            )
        return self


def code_sha256(code: str) -> str:
    """The hash a module's code is recorded and trusted by."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


class ArchitectureSpec(Spec):
    """A preset network or a custom layer stack, adapted to the dataset's shape.

    Presets adapt to the dataset's channels, classes and resolution; ``width`` scales their
    channel counts and ``depth`` their number of blocks (where a preset has repeated
    blocks). ``preset == "custom"`` means the network is ``layers``, built as written.
    Names are checked against the model registry when the model is built, so that adding a
    preset or a layer kind needs no spec change.

    ``preset == "timm"`` builds ``timm_model`` with timm; ``preset == "module"`` builds the
    person's own class from ``module``.

    Where the network starts: ``weights`` names published weights (a torchvision weights
    enum member such as ``IMAGENET1K_V2`` for a torchvision preset, or ``default`` / a
    pretrained tag for a timm model), downloaded once into torch.hub's cache; ``pretrained``
    is a weights file the person picked (safetensors, or a PyTorch file read with
    weights-only loading). At most one of the two. ``freeze_backbone`` then trains only the
    classifier.
    """

    preset: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_\-.]+$")] = (
        "small_cnn"
    )
    width: Annotated[float, Field(gt=0.0, le=16.0)] = 1.0
    depth: Annotated[float, Field(gt=0.0, le=8.0)] = 1.0
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    layers: tuple[LayerSpec, ...] = ()
    pretrained: Annotated[str, Field(max_length=4096)] = ""
    freeze_backbone: bool = False
    weights: Annotated[str, Field(max_length=100, pattern=_NAME)] = ""
    timm_model: Annotated[str, Field(max_length=200, pattern=_NAME)] = ""
    module: ModuleSource | None = None

    what: ClassVar[str] = "architecture spec"

    @field_validator("layers")
    @classmethod
    def _bounded(cls, layers: tuple[LayerSpec, ...]) -> tuple[LayerSpec, ...]:
        if len(layers) > MAX_LAYERS:
            raise ValueError(f"a network holds at most {MAX_LAYERS} top-level layers")
        return layers

    @model_validator(mode="after")
    def _custom_has_layers(self) -> ArchitectureSpec:
        if self.preset in (TIMM, MODULE) and (self.width != 1.0 or self.depth != 1.0):
            raise ValueError(
                f"width and depth scale cnn-lab's and torchvision's presets; a {self.preset} "
                "network is built as its own code says, so leave them at 1"
            )
        if (self.preset == TIMM) != bool(self.timm_model):
            raise ValueError(
                "a timm network names its model in timm_model (and timm_model needs preset 'timm')"
            )
        if (self.preset == MODULE) != (self.module is not None):
            raise ValueError(
                "a module network gives its file and class in module (and module needs preset "
                "'module')"
            )
        if self.weights and self.pretrained:
            raise ValueError(
                "give either published weights (weights) or a weights file (pretrained), not both"
            )
        if self.weights and self.preset in (CUSTOM, MODULE):
            raise ValueError(
                "published weights exist for torchvision presets and timm models; for your own "
                "network pick a weights file (pretrained)"
            )
        if self.preset == CUSTOM:
            if not self.layers:
                raise ValueError("a custom network needs at least one layer")
            if self.width != 1.0 or self.depth != 1.0 or self.dropout != 0.0:
                raise ValueError(
                    "width, depth and dropout apply to presets; a custom network is built "
                    "as its layers say, so leave them at their defaults (add a Dropout layer "
                    "for dropout)"
                )
        elif self.layers:
            raise ValueError(
                f"layers are given but the preset is {self.preset!r}; set preset to 'custom' "
                "to build the layers"
            )
        if self.freeze_backbone and not self.starts_pretrained:
            raise ValueError("freezing the backbone needs pretrained weights to keep")
        return self

    @property
    def is_custom(self) -> bool:
        return self.preset == CUSTOM

    @property
    def starts_pretrained(self) -> bool:
        """Whether the network starts from trained weights (published or a file)."""
        return bool(self.weights or self.pretrained)


def memory_hint(architecture: ArchitectureSpec | None) -> str:
    """What to lower after running out of memory. A timm or module network has no width
    cnn-lab can change, so its hint names the image size or a smaller network instead;
    None (the network is not known: its spec could not be read) names the batch only."""
    if architecture is None:
        return "Lower the batch size."
    if architecture.preset in (TIMM, MODULE):
        return "Lower the batch size or the image size, or pick a smaller network."
    return "Lower the batch size or the model width."
