"""Build small, real image datasets on disk for the import tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


def write_class_folder(
    root: Path,
    counts: dict[str, int] | None = None,
    size: tuple[int, int] = (40, 30),
    seed: int = 0,
    fmt: str = "png",
) -> Path:
    """One sub-folder per class of noisy images around the class colour (distinct images)."""
    counts = counts or {name: 12 for name in COLOURS}
    rng = np.random.default_rng(seed)
    for index, (name, count) in enumerate(counts.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        base = np.array(list(COLOURS.values())[index % len(COLOURS)])
        for i in range(count):
            # Random coloured rectangles on a gradient give each image its own structure (and
            # its own perceptual hash), like photos; a little noise on top.
            h, w = size[1], size[0]
            yy = np.linspace(-40, 40, h)[:, None, None]
            noise = rng.integers(-6, 6, (h, w, 3))
            pixels = np.clip(base + yy + noise, 0, 255).astype(np.uint8)
            for _ in range(4):
                y, x = rng.integers(0, h - h // 4), rng.integers(0, w - w // 4)
                dy, dx = rng.integers(h // 6, h // 2), rng.integers(w // 6, w // 2)
                pixels[y : y + dy, x : x + dx] = rng.integers(0, 256, 3)
            Image.fromarray(pixels).save(folder / f"{name}_{i:03d}.{fmt}")
    return root
