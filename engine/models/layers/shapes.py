"""Checks build functions share: what input a layer needs, said as a sentence."""

from __future__ import annotations

from cnn_lab.engine.models.layers.registry import LayerProblem, Shape
from cnn_lab.engine.util.formatting import format_shape as fmt


def need_map(shape: Shape) -> tuple[int, int, int]:
    """The layer works on feature maps [C, H, W]."""
    if len(shape) != 3:
        raise LayerProblem(
            f"needs a feature map [channels, height, width] but gets the vector {fmt(shape)}; "
            "move it before the flatten or global pooling layer"
        )
    return shape[0], shape[1], shape[2]


def need_vector(shape: Shape) -> int:
    """The layer works on flat vectors [F]."""
    if len(shape) != 1:
        raise LayerProblem(
            f"needs a flat vector but gets the feature map {fmt(shape)}; add global average "
            "pooling or flatten before it"
        )
    return shape[0]


def window_fits(shape: Shape, kernel: int, padding: int, dilation: int, what: str) -> None:
    """A sliding window larger than the padded map would leave nothing: say so plainly."""
    _, height, width = need_map(shape)
    span = dilation * (kernel - 1) + 1
    if min(height, width) + 2 * padding < span:
        raise LayerProblem(
            f"the spatial size collapses to zero: the {what} spans {span}×{span} pixels but the "
            f"feature map is only {height}×{width}; remove an earlier downsampling layer or "
            "use larger images"
        )


def same_padding(kernel: int, dilation: int) -> int:
    """Padding that keeps the size at stride 1 (exact for odd kernels)."""
    return dilation * (kernel - 1) // 2
