"""cnn-lab's training loader against torchvision's ImageFolder + DataLoader on the same JPEGs.

Both arms read the same folder of JPEG files, produce the same resolution, and apply the same
augmentation (horizontal flip and a random crop with 4-pixel padding, i.e. a translation),
then normalise. The baseline is the standard recipe: ``ImageFolder`` with PIL transforms in a
``DataLoader`` with one worker per core. cnn-lab's arm is measured with its cache built (the
one-off build time is printed too). Prints one JSON object; ``ratio`` > 1 means cnn-lab is
faster.

    python benchmarks/data_pipeline.py [--folder DIR] [--images 6000] [--size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch


def make_folder(out: Path, size: int) -> None:
    """The shapes sample written as JPEG files, one folder per class."""
    from cnn_lab.engine.data.export import export_folder
    from cnn_lab.engine.data.prepare import prepare_dataset
    from cnn_lab.engine.specs import DatasetSpec

    prepared = prepare_dataset(DatasetSpec(source="sample:shapes", image_size=size))
    export_folder(prepared, out, fmt="jpg", quality=90)


def bench_torchvision(folder: Path, size: int, batch: int, seconds: float) -> dict:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    recipe = transforms.Compose(
        [
            transforms.Resize((size, size)),
            transforms.RandomHorizontalFlip(),
            transforms.RandomCrop(size, padding=4, padding_mode="reflect"),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
        ]
    )
    dataset = datasets.ImageFolder(str(folder), transform=recipe)
    workers = os.cpu_count() or 1
    loader = DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        persistent_workers=True,
        drop_last=False,
    )
    next(iter(loader))  # start the workers before timing
    images, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for x, _ in loader:
            images += x.shape[0]
            if time.perf_counter() - started >= seconds:
                break
    elapsed = time.perf_counter() - started
    return {"images_per_s": images / elapsed, "workers": workers, "images": images}


def bench_cnn_lab(folder: Path, size: int, batch: int, seconds: float, device: str) -> dict:
    from cnn_lab.engine.data.bench import bench_loader
    from cnn_lab.engine.specs import DatasetSpec

    spec = DatasetSpec(
        source=str(folder),
        image_size=size,
        val_fraction=0.01,  # measure on (nearly) every image, as the baseline does
        augment=({"name": "hflip", "strength": 1.0}, {"name": "translate", "strength": 0.5}),
    )
    cold = bench_loader(spec, batch_size=batch, device=device, seconds=0.1)
    warm = bench_loader(spec, batch_size=batch, device=device, seconds=seconds)
    return {
        "images_per_s": warm["images_per_s"],
        "cache_build_s": cold["prepare_s"],
        "cached_prepare_s": warm["prepare_s"],
        "resident": warm["resident"],
        "images": warm["images"],
        "device": warm["device"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folder", type=Path, help="a class-folder tree of JPEGs (default: made)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--device", default="cpu", help="where cnn-lab's loader runs: cpu, cuda")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CNN_LAB_CACHE", str(Path(tmp) / "cache"))
        folder = args.folder or Path(tmp) / "shapes-jpeg"
        if args.folder is None:
            make_folder(folder, args.size)
        ours = bench_cnn_lab(folder, args.size, args.batch_size, args.seconds, args.device)
        baseline = bench_torchvision(folder, args.size, args.batch_size, args.seconds)
    print(
        json.dumps(
            {
                "benchmark": "data_pipeline",
                "folder": str(args.folder or "sample:shapes as JPEG"),
                "size": args.size,
                "augment": "hflip + random crop/translate (pad 4)",
                "cnn_lab_images_per_s": round(ours["images_per_s"]),
                "cnn_lab_cache_build_s": round(ours["cache_build_s"], 2),
                "cnn_lab_cached_prepare_s": round(ours["cached_prepare_s"], 2),
                "cnn_lab_resident": ours["resident"],
                "cnn_lab_device": ours["device"],
                "baseline_torchvision_images_per_s": round(baseline["images_per_s"]),
                "baseline_workers": baseline["workers"],
                "ratio": round(ours["images_per_s"] / baseline["images_per_s"], 1),
                "cpu_count": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
