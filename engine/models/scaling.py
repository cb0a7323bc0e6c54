"""Width and depth multipliers, applied the same way by every preset."""

from __future__ import annotations

import math


def scaled_channels(base: int, width: float) -> int:
    """``base * width`` rounded to a multiple of 8 (at least 8), as the cnn-lab presets do.

    Multiples of 8 suit tensor cores and vectorised CPU kernels.
    """
    return max(8, round(base * width / 8) * 8)


def scaled_repeats(blocks: int, depth: float) -> int:
    """Blocks in a stage after depth scaling: rounded half up, and at least one.

    Half up rather than Python's round() (which rounds half to even) so that, e.g., depth 1.25
    turns 2 blocks into 3 just as it turns 6 into 8: a larger multiplier never gives fewer
    blocks.
    """
    return max(1, math.floor(blocks * depth + 0.5))
