"""The architecture panel's and ``cnn-lab model summary``'s one call: spec in, summary out.

The network is built on the meta device, so a summary of EfficientNet-B3 costs tens of
milliseconds and no memory, and can run on every edit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnn_lab.engine.models.registry import InputShape, build_model
from cnn_lab.engine.specs import ArchitectureSpec

if TYPE_CHECKING:
    from cnn_lab.engine.models.summary import ModelSummary


def summarize_architecture(spec: ArchitectureSpec, shape: InputShape) -> ModelSummary:
    """Build ``spec`` for ``shape`` on the meta device and summarise it.

    Raises ModelError (with the failing layer's path) or UserError with a sentence.
    Pretrained weights are not read here: they do not change shapes or costs, and reading a
    large file on every edit would make the panel slow. Freezing is applied so the
    trainable-parameter count is right.
    """
    import torch

    from cnn_lab.engine.models.summary import summarize

    plain = spec.model_copy(update={"pretrained": "", "weights": "", "freeze_backbone": False})
    with torch.device("meta"):
        model = build_model(plain, shape)
    if spec.freeze_backbone:
        from cnn_lab.engine.models.weights import freeze_backbone

        freeze_backbone(model)
    return summarize(model, (shape.channels, shape.height, shape.width))
