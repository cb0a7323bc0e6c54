"""A folder of camera-sized photographs, made from real photos that ship inside a package.

scikit-image's wheel carries a handful of real photographs (an astronaut, coffee, a cat, a
motorcycle, a rocket, a retina, the Hubble deep field). Phone and camera photos are 1,000 to
4,000 px on the long side, so each file here is one of those photos cropped, mirrored and
scaled up to such a size, with sensor-like noise so the JPEG encoder has real detail to keep,
saved at a varied quality; a few files are PNGs, as in a real folder. The files are made
without importing scikit-image (which pulls SciPy): the photos are read from its package data.
"""

from __future__ import annotations

import io
from importlib.resources import files
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops

PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "motorcycle_left.png",
    "rocket.jpg",
    "retina.jpg",
    "hubble_deep_field.jpg",
)


def package_photos() -> list[Image.Image]:
    """The real photographs in scikit-image's package data, as RGB images."""
    folder = files("skimage") / "data"
    out = []
    for name in PHOTOS:
        with (folder / name).open("rb") as fp:
            out.append(Image.open(io.BytesIO(fp.read())).convert("RGB"))
    return out


def grain_texture(seed: int, side: int = 4000) -> Image.Image:
    """Sensor-like RGB noise (sigma 6 around 128), made once and cropped for every photo."""
    rng = np.random.default_rng(seed)
    quarter = side // 4
    planes = [Image.effect_noise((quarter, quarter), 6) for _ in range(3)]
    order = rng.permutation(3)
    grain = Image.merge("RGB", [planes[i] for i in order])
    return grain.resize((side, side), Image.Resampling.BILINEAR)


def camera_photo(
    base: Image.Image, rng: np.random.Generator, long_side: int, grain: Image.Image
) -> Image.Image:
    """``base`` cropped at random, maybe mirrored, scaled to ``long_side`` px, with ``grain``."""
    w, h = base.size
    cw, ch = int(w * rng.uniform(0.7, 1.0)), int(h * rng.uniform(0.7, 1.0))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    crop = base.crop((x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    aspect = rng.choice([4 / 3, 3 / 2, 16 / 9, 1.0])
    portrait = rng.random() < 0.3
    size = (long_side, round(long_side / aspect))
    big = crop.resize(size[::-1] if portrait else size, Image.Resampling.BILINEAR)
    # Grain so the JPEG encoder has sensor-like detail to keep; cropped from one texture at a
    # random offset (making fresh noise at full size would dominate the folder's build time).
    gx = int(rng.integers(0, grain.width - big.width + 1))
    gy = int(rng.integers(0, grain.height - big.height + 1))
    return ImageChops.add(big, grain.crop((gx, gy, gx + big.width, gy + big.height)), offset=-128)


def write_photo_folder(
    out: Path,
    count: int,
    *,
    classes: int = 7,
    long_sides: tuple[int, int] = (1000, 4000),
    png_every: int = 50,
    seed: int = 0,
    workers: int = 1,
) -> list[Path]:
    """Write ``count`` photos into ``out/class_k/`` and return their paths (in index order).

    Class k's photos come from package photo k (mod the number of photos), so a classifier
    has something to learn. Every ``png_every``-th file is a PNG; the rest are JPEGs at
    quality 70 to 95. Each file depends only on (seed, index), so ``workers`` processes
    write the same folder as one.
    """
    settings = (out, classes, long_sides, png_every, seed)
    if workers <= 1:
        _start(settings)
        return [_write_one(i) for i in range(count)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, context, initializer=_start, initargs=(settings,)) as pool:
        return list(pool.map(_write_one, range(count), chunksize=32))


_STATE: dict[str, object] = {}


def _start(settings: tuple[Path, int, tuple[int, int], int, int]) -> None:
    """Per process: the settings, the decoded package photos and one grain texture."""
    _STATE.update(
        settings=settings,
        bases=package_photos(),
        grain=grain_texture(settings[4], max(settings[2][1], 16)),
    )


def _write_one(i: int) -> Path:
    out, classes, long_sides, png_every, seed = _STATE["settings"]  # type: ignore[misc]
    bases: list[Image.Image] = _STATE["bases"]  # type: ignore[assignment]
    rng = np.random.default_rng([seed, i])
    label = i % classes
    folder = out / f"class_{label}"
    folder.mkdir(parents=True, exist_ok=True)
    long_side = int(rng.integers(long_sides[0], long_sides[1] + 1))
    image = camera_photo(bases[label % len(bases)], rng, long_side, _STATE["grain"])  # type: ignore[arg-type]
    if png_every and i % png_every == png_every - 1:
        path = folder / f"img_{i:06d}.png"
        image.save(path, compress_level=1)
    else:
        path = folder / f"img_{i:06d}.jpg"
        image.save(path, quality=int(rng.integers(70, 96)))
    return path
