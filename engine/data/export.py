"""Write prepared images back out as a folder of class folders.

For trying the importer on a real folder without finding one (``cnn-lab data export
sample:shapes ~/shapes --format jpg``), and for handing a cleaned dataset to another tool.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from cnn_lab.engine.data.prepare import PreparedDataset
from cnn_lab.engine.errors import DataError

_PIL_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "bmp": "BMP"}


def export_folder(
    prepared: PreparedDataset,
    out: Path,
    *,
    fmt: str = "png",
    quality: int = 90,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> int:
    """Write every image to ``out/CLASS/NNNNNN.fmt``; refuses a folder that is not empty."""
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} is not empty.", hint="Export into a new or empty folder.")
    pil_format = _PIL_FORMATS[fmt]
    try:
        for name in prepared.classes:
            (out / _safe(name)).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"Cannot create {out} ({exc.strerror or exc}).") from None

    def write(i: int) -> None:
        pixels = prepared.images[i]
        image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        target = out / _safe(prepared.classes[int(prepared.labels[i])]) / f"{i:06d}.{fmt}"
        image.save(target, pil_format, quality=quality)

    total = len(prepared)
    with ThreadPoolExecutor() as pool:
        for done, _ in enumerate(pool.map(write, range(total)), start=1):
            if done % 256 == 0 or done == total:
                progress("Writing images", done, total)
    return total


def _safe(name: str) -> str:
    """A class name as a folder name: no separators, nothing hidden."""
    cleaned = "".join("_" if c in '/\\:*?"<>|' else c for c in name).strip(". ")
    return cleaned or "_"
