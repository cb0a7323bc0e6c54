"""pixel_map() then rest() is the augmenter itself, split where the loader needs it.

The loader follows the leading flips and shifts as a map while it gathers uint8 images and
runs the rest on float; that is only allowed because the two halves draw the same random
numbers and compute the same batch as calling the augmenter whole.
"""

from __future__ import annotations

import pytest
import torch

from cnn_lab.engine.data.augment import BatchAugmenter, PixelMap

STEP_LISTS = [
    [("hflip", 1.0), ("translate", 0.5)],
    [("translate", 1.0), ("hflip", 0.3), ("vflip", 1.0), ("translate", 0.25)],
    [("vflip", 0.8)],
    [("hflip", 1.0), ("cutout", 0.5), ("translate", 1.0)],  # a shift after cutout: on float
    [("rotate", 0.5), ("hflip", 1.0)],  # nothing to map before the rotation
    [("translate", 0.1)],  # too weak to move a pixel of a small image: draws nothing
]
MIXING = [{}, {"mixup_alpha": 0.4}, {"mixup_alpha": 0.4, "cutmix_alpha": 1.0}]


@pytest.mark.parametrize("steps", STEP_LISTS, ids=lambda s: "+".join(n for n, _ in s))
@pytest.mark.parametrize("mixing", MIXING, ids=["plain", "mixup", "both"])
@pytest.mark.parametrize("shape", [(32, 32), (17, 40), (1, 3)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_map_then_rest_is_the_whole_augmenter(steps, mixing, shape, layout) -> None:  # type: ignore[no-untyped-def]
    h, w = shape
    for seed in range(3):
        whole = BatchAugmenter(steps, seed=seed, **mixing)
        split = BatchAugmenter(steps, seed=seed, **mixing)
        x = torch.rand(12, 3, h, w, generator=torch.Generator().manual_seed(seed))
        x = x.contiguous(memory_format=layout)
        y = torch.arange(12) % 3
        for _ in range(2):  # and the generator is left where the whole one leaves it
            expected, targets = whole(x, y, 3)
            pixel_map = split.pixel_map(12, h, w)
            mapped = x if pixel_map is None else pixel_map.apply(x)
            got, got_targets = split.rest(mapped, y, 3)
            assert torch.equal(got, expected)
            assert torch.equal(got_targets, targets)


def test_the_map_covers_the_leading_flips_and_shifts_only() -> None:
    assert BatchAugmenter([("rotate", 0.5), ("hflip", 1.0)]).pixel_map(4, 8, 8) is None
    flips = BatchAugmenter([("hflip", 1.0), ("cutout", 0.5)])
    assert flips.has_rest and flips.map_layout(8, 8) == (0, True)
    crop = BatchAugmenter([("hflip", 1.0), ("translate", 0.5)])
    assert not crop.has_rest
    assert crop.map_layout(64, 64) == (4, True)  # pad 4 on 64 px: the classic crop
    assert BatchAugmenter([("translate", 1.0), ("vflip", 1.0)]).map_layout(32, 32) == (4, False)
    assert BatchAugmenter([("hflip", 1.0)], mixup_alpha=0.2).has_rest


def test_a_map_only_moves_pixels_and_its_maps_stay_in_the_image() -> None:
    augmenter = BatchAugmenter([("translate", 1.0), ("hflip", 1.0), ("translate", 1.0)], seed=4)
    pixel_map = augmenter.pixel_map(64, 16, 24)
    assert isinstance(pixel_map, PixelMap)
    assert pixel_map.rows.shape == (64, 16) and pixel_map.cols.shape == (64, 24)
    assert int(pixel_map.rows.min()) >= 0 and int(pixel_map.rows.max()) < 16
    assert int(pixel_map.cols.min()) >= 0 and int(pixel_map.cols.max()) < 24
    x = torch.randint(0, 256, (64, 3, 16, 24), dtype=torch.uint8)
    assert pixel_map.apply(x).dtype == torch.uint8  # uint8 in, uint8 out: exact
