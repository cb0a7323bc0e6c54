"""``cnn-lab data inspect`` and ``cnn-lab data bench``, and the data options ``train`` shares.

Kept apart from engine/cli.py so each file holds one family of commands.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, TextIO

from cnn_lab.engine.errors import SpecError
from cnn_lab.engine.specs import DatasetSpec
from cnn_lab.engine.specs.dataset import RESIZE_POLICIES


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Preprocessing, split and augmentation options, the same for train, inspect and bench."""
    parser.add_argument(
        "--size", type=int, default=None, metavar="N", help="square image side (default: auto)"
    )
    parser.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="3 (RGB) or 1 (greyscale) (default: auto: 1 when every image is greyscale)",
    )
    parser.add_argument("--resize", choices=RESIZE_POLICIES, default="squash")
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="use at most N images (stratified)"
    )
    parser.add_argument("--val", type=float, default=DatasetSpec().val_fraction, metavar="F")
    parser.add_argument("--test", type=float, default=0.0, metavar="F")
    parser.add_argument(
        "--folds",
        type=int,
        default=None,
        metavar="K",
        help="k-fold cross-validation: deal the non-test images into K folds (replaces --val)",
    )
    parser.add_argument(
        "--fold", type=int, default=0, metavar="I", help="the fold that validates, 0 to K-1"
    )
    parser.add_argument(
        "--augment",
        default="",
        metavar="LIST",
        help="augmentations as name[=strength],… e.g. hflip,translate=0.5",
    )
    parser.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA")
    parser.add_argument("--cutmix", type=float, default=0.0, metavar="ALPHA")
    parser.add_argument(
        "--balance", choices=("none", "weighted_loss", "weighted_sampler"), default="none"
    )


def dataset_dict(args: argparse.Namespace, source: str) -> dict[str, Any]:
    return {
        "source": source,
        "limit": args.limit,
        "image_size": args.size,
        "channels": args.channels,
        "resize": args.resize,
        "val_fraction": args.val,
        "test_fraction": args.test,
        "folds": args.folds,
        "fold": args.fold,
        "augment": _parse_augment(args.augment),
        "mixup_alpha": args.mixup,
        "cutmix_alpha": args.cutmix,
        "class_balance": args.balance,
    }


def _parse_augment(text: str) -> list[dict[str, Any]]:
    steps = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, strength = part.partition("=")
        step: dict[str, Any] = {"name": name}
        if strength:
            try:
                step["strength"] = float(strength)
            except ValueError:
                raise SpecError(
                    f"--augment: the strength of {name!r} must be a number, got {strength!r}."
                ) from None
        steps.append(step)
    return steps


def _dataset_spec(args: argparse.Namespace) -> DatasetSpec:
    from pydantic import ValidationError

    from cnn_lab.engine.specs.base import spec_error

    try:
        return DatasetSpec.model_validate(dataset_dict(args, args.source))
    except ValidationError as exc:
        raise spec_error(exc, what="data options") from None


def add_data_commands(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    data = commands.add_parser("data", help="inspect a dataset or measure its loader")
    actions = data.add_subparsers(
        dest="data_command", metavar="ACTION", required=True, parser_class=parser_class
    )
    inspect = actions.add_parser("inspect", help="import a source and print its report")
    inspect.add_argument("source", metavar="SOURCE")
    add_data_options(inspect)
    inspect.add_argument("--json", action="store_true")
    inspect.set_defaults(handler=cmd_data_inspect)

    bench = actions.add_parser("bench", help="measure the training loader's images per second")
    bench.add_argument("source", metavar="SOURCE")
    add_data_options(bench)
    bench.add_argument("--batch-size", type=int, default=256, metavar="N")
    bench.add_argument("--device", default="auto", metavar="DEVICE")
    bench.add_argument("--seconds", type=float, default=3.0, metavar="S", help="time to measure")
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(handler=cmd_data_bench)

    export = actions.add_parser(
        "export", help="write a source as a folder of class folders (e.g. a sample, to try import)"
    )
    export.add_argument("source", metavar="SOURCE")
    export.add_argument("out", metavar="FOLDER")
    add_data_options(export)
    export.add_argument("--format", choices=("png", "jpg", "webp", "bmp"), default="png")
    export.add_argument("--quality", type=int, default=90, help="JPEG/WebP quality")
    export.set_defaults(handler=cmd_data_export)


def cmd_data_inspect(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.data.prepare import prepare_dataset

    spec = _dataset_spec(args)
    prepared = prepare_dataset(spec, progress=_progress_line(err))
    report = prepared.report
    if args.json:
        out.write(report.model_dump_json() + "\n")
        return 0
    out.write(
        f"{report.images:,} images in {len(report.classes)} classes from {report.source} "
        f"({report.kind}), prepared at {report.image_size}×{report.image_size}×{report.channels} "
        f"({report.resize})\n"
    )
    if report.preprocess_reason:
        out.write(f"size and channels: {report.preprocess_reason}\n")
    width = max((len(name) for name in report.classes), default=5)
    for name, count in report.classes.items():
        out.write(f"  {name.ljust(width)}  {count:>7,}\n")
    if report.sizes.max_width:
        s = report.sizes
        out.write(
            f"sizes: {s.min_width}–{s.max_width} × {s.min_height}–{s.max_height} px "
            f"(median {s.median_width:.0f}×{s.median_height:.0f}); "
            f"modes: {_counts(report.modes)}; formats: {_counts(report.formats)}\n"
        )
    c = report.cache
    out.write(f"cache: {c.decoded:,} decoded, {c.reused:,} reused in {c.build_s:.2f} s\n")
    if report.skipped:
        out.write(f"skipped {len(report.skipped)} files:\n")
        for skip in report.skipped:
            out.write(f"  {skip.path}: {skip.reason}\n")
    for finding in report.warnings:
        label = "BLOCKS TRAINING" if finding.severity == "blocker" else "warning"
        hint = f" {finding.hint}" if finding.hint else ""
        out.write(f"{label}: {finding.message}{hint}\n")
    return 0


def cmd_data_bench(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.data.bench import bench_loader

    spec = _dataset_spec(args)
    result = bench_loader(
        spec,
        batch_size=args.batch_size,
        device=args.device,
        seconds=args.seconds,
        progress=_progress_line(err),
    )
    if args.json:
        out.write(json.dumps(result) + "\n")
    else:
        out.write(
            f"{result['images_per_s']:,.0f} images/s on {result['device']} "
            f"(batch {result['batch_size']}, {'resident' if result['resident'] else 'streamed'}, "
            f"augment: {result['augment'] or 'none'}); prepare took {result['prepare_s']:.2f} s\n"
        )
    return 0


def cmd_data_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path

    from cnn_lab.engine.data.export import export_folder
    from cnn_lab.engine.data.prepare import prepare_dataset

    prepared = prepare_dataset(_dataset_spec(args), progress=_progress_line(err))
    written = export_folder(
        prepared,
        Path(args.out),
        fmt=args.format,
        quality=args.quality,
        progress=_progress_line(err),
    )
    out.write(f"wrote {written:,} images in {len(prepared.classes)} class folders to {args.out}\n")
    return 0


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def _progress_line(err: TextIO) -> Any:
    """Progress on stderr at most twice a second, so stdout stays clean for --json."""
    last = [0.0]

    def show(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or done == total:
            last[0] = now
            err.write(f"{stage}: {done:,}/{total:,}\n")
            err.flush()

    return show
