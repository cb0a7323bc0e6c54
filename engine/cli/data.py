"""``cnn-lab data inspect|bench|export``: a dataset on a terminal, prepared as training would.

The data options are ``common.add_data_options``, shared with ``train`` and ``tune``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from cnn_lab.engine.cli.common import add_actions, add_data_options, dataset_dict, progress_line
from cnn_lab.engine.specs import DatasetSpec


def _dataset_spec(args: argparse.Namespace) -> DatasetSpec:
    from pydantic import ValidationError

    from cnn_lab.engine.specs.base import spec_error

    try:
        return DatasetSpec.model_validate(dataset_dict(args, args.source))
    except ValidationError as exc:
        raise spec_error(exc, what="data options") from None


def add_commands(commands: Any) -> None:
    data = commands.add_parser("data", help="inspect a dataset or measure its loader")
    actions = add_actions(data, "data_command")
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
    prepared = prepare_dataset(spec, progress=progress_line(err))
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
    from cnn_lab.engine.tune.loader_bench import bench_loader

    spec = _dataset_spec(args)
    result = bench_loader(
        spec,
        batch_size=args.batch_size,
        device=args.device,
        seconds=args.seconds,
        progress=progress_line(err),
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

    prepared = prepare_dataset(_dataset_spec(args), progress=progress_line(err))
    written = export_folder(
        prepared,
        Path(args.out),
        fmt=args.format,
        quality=args.quality,
        progress=progress_line(err),
    )
    out.write(f"wrote {written:,} images in {len(prepared.classes)} class folders to {args.out}\n")
    return 0


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"
