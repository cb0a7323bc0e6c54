"""cnn-lab's training loader against torchvision's ImageFolder + DataLoader on the same JPEGs.

Both arms read the same folder of JPEG files, produce the same resolution, and apply the same
augmentation (horizontal flip and a random crop with 4-pixel padding, i.e. a translation),
then normalise. The baseline is the standard recipe: ``ImageFolder`` with PIL transforms in a
``DataLoader`` with one worker per core. cnn-lab's arm is measured with its cache built (the
one-off build time is printed too). Each arm runs ``--runs`` times, interleaved; prints one
JSON object with every run and ``ratio``, the median of cnn-lab's runs over the median of the
baseline's (> 1 means cnn-lab is faster).

    python benchmarks/data_pipeline.py [--folder DIR] [--size 64] [--seconds 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def torchvision_loader(folder: Path, size: int, batch: int):  # type: ignore[no-untyped-def]
    """The standard recipe: ImageFolder, PIL transforms, one persistent worker per core."""
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
    loader = DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        num_workers=os.cpu_count() or 1,
        persistent_workers=True,
        drop_last=False,
    )
    next(iter(loader))  # start the workers before timing
    return loader


def torchvision_rate(loader, seconds: float) -> dict:  # type: ignore[no-untyped-def]
    images, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for x, _ in loader:
            images += x.shape[0]
            if time.perf_counter() - started >= seconds:
                break
    elapsed = time.perf_counter() - started
    return {"images_per_s": images / elapsed, "images": images}


def cnn_lab_loader(folder: Path, size: int, batch: int, device: str):  # type: ignore[no-untyped-def]
    """cnn-lab's training loader, built twice: once to time the cache build, once cached."""
    from cnn_lab.engine.data.training_data import build_training_data
    from cnn_lab.engine.specs import DatasetSpec
    from cnn_lab.engine.train.devices import resolve_device
    from cnn_lab.engine.tune.loader_bench import warm_up

    spec = DatasetSpec(
        source=str(folder),
        image_size=size,
        val_fraction=0.01,  # measure on (nearly) every image, as the baseline does
        augment=({"name": "hflip", "strength": 1.0}, {"name": "translate", "strength": 0.5}),
    )
    target = resolve_device(device)
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        data = build_training_data(spec, device=target, batch_size=batch, seed=0)
        timings.append(time.perf_counter() - started)
    warm_up(data.train)
    return data.train, {"cache_build_s": timings[0], "cached_prepare_s": timings[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folder", type=Path, help="a class-folder tree of JPEGs (default: made)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=10.0, help="per run of each arm")
    parser.add_argument("--runs", type=int, default=3, help="runs of each arm, interleaved")
    parser.add_argument("--device", default="cpu", help="where cnn-lab's loader runs: cpu, cuda")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    from cnn_lab.engine.train.devices import describe_device
    from cnn_lab.engine.tune.loader_bench import loader_rate

    load_before = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CNN_LAB_CACHE", str(Path(tmp) / "cache"))
        folder = args.folder or Path(tmp) / "shapes-jpeg"
        if args.folder is None:
            make_folder(folder, args.size)
        ours_loader, build = cnn_lab_loader(folder, args.size, args.batch_size, args.device)
        baseline_loader = torchvision_loader(folder, args.size, args.batch_size)
        # Interleaved (ours, baseline, ours, ...) so a neighbour's load on a shared machine
        # falls on both arms alike; the ratio is of the medians.
        for _ in range(args.runs):
            ours = loader_rate(ours_loader, args.seconds)["images_per_s"]
            baseline = torchvision_rate(baseline_loader, args.seconds)["images_per_s"]
            runs.append({"cnn_lab": round(ours), "baseline": round(baseline)})
        del baseline_loader  # its workers end with it
    ours_median = statistics.median(r["cnn_lab"] for r in runs)
    baseline_median = statistics.median(r["baseline"] for r in runs)
    print(
        json.dumps(
            {
                "benchmark": "data_pipeline",
                "folder": str(args.folder or "sample:shapes as JPEG"),
                "size": args.size,
                "augment": "hflip + random crop/translate (pad 4)",
                "cnn_lab_images_per_s": round(ours_median),
                "cnn_lab_cache_build_s": round(build["cache_build_s"], 2),
                "cnn_lab_cached_prepare_s": round(build["cached_prepare_s"], 2),
                "cnn_lab_resident": ours_loader.resident,
                "cnn_lab_device": describe_device(ours_loader.device),
                "baseline_torchvision_images_per_s": round(baseline_median),
                "baseline_workers": os.cpu_count() or 1,
                "ratio": round(ours_median / baseline_median, 1),
                "ratio_is": f"median of {args.runs} runs of {args.seconds:g} s each, interleaved",
                "runs": [{**r, "ratio": round(r["cnn_lab"] / r["baseline"], 1)} for r in runs],
                "cpu_count": os.cpu_count(),
                "load_average_before_after": [
                    round(load_before, 2),
                    round(os.getloadavg()[0], 2),
                ],
            }
        )
    )


if __name__ == "__main__":
    main()
