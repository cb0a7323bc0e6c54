"""``cnn-lab model list|summary|export``: networks on a terminal."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any, TextIO

from cnn_lab.engine.cli.common import (
    add_actions,
    add_db,
    add_network_source_options,
    architecture_from_args,
)
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape
from cnn_lab.engine.specs import ArchitectureSpec
from cnn_lab.engine.util.formatting import format_bytes, format_count

DEFAULT_INPUT = "3x224x224"
DEFAULT_CLASSES = 1000


def add_commands(commands: Any) -> None:
    model = commands.add_parser("model", help="list networks, summarise one, export a trained one")
    actions = add_actions(model, "model_command")
    listing = actions.add_parser(
        "list",
        help="list presets and layer kinds; --timm TEXT searches timm's models",
        description="Presets and layer kinds. Other networks: --timm TEXT searches timm's "
        "models by name or family (resnet, efficientnet_b*); your own nn.Module class is "
        "used as --module FILE.py:CLASS with 'model summary' and 'train'.",
    )
    listing.add_argument(
        "--timm",
        default=None,
        metavar="TEXT",
        help="search timm's models by name, family or wildcard (needs cnn-lab[timm])",
    )
    listing.add_argument(
        "--limit", type=int, default=30, metavar="N", help="at most N timm models (default: 30)"
    )
    listing.add_argument(
        "--params", action="store_true", help="count each timm model's parameters (slower)"
    )
    listing.add_argument(
        "--weights",
        default=None,
        metavar="PRESET",
        help="list PRESET's published weights (names for 'train --weights NAME') with their "
        "published accuracy, size and input",
    )
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_model_list)

    summary = actions.add_parser(
        "summary",
        help="shapes, parameters, MACs and memory of a preset, a spec file, a timm model "
        "(--timm NAME) or your own module (--module FILE.py:CLASS)",
    )
    summary.add_argument(
        "network",
        nargs="?",
        default=None,
        metavar="NAME_OR_SPEC.json",
        help="a preset name, or a JSON file holding an architecture spec or a run spec",
    )
    add_network_source_options(summary)
    summary.add_argument(
        "--input",
        default=None,
        metavar="CxHxW",
        help=f"input shape (default: {DEFAULT_INPUT}, ImageNet-sized like published figures)",
    )
    summary.add_argument(
        "--classes", type=int, default=None, metavar="N", help=f"default: {DEFAULT_CLASSES}"
    )
    summary.add_argument("--width", type=float, default=None, help="width multiplier")
    summary.add_argument("--depth", type=float, default=None, help="depth multiplier")
    summary.add_argument(
        "--batch-size", type=int, default=None, metavar="N", help="estimate training memory"
    )
    summary.add_argument("--optimizer", default="sgd", help="for the memory estimate")
    summary.add_argument("--json", action="store_true")
    summary.set_defaults(handler=cmd_model_summary)

    export = actions.add_parser("export", help="export a trained run's network and check it")
    export.add_argument("run_id", type=int, metavar="RUN_ID")
    export.add_argument(
        "--format", choices=("torchscript", "onnx", "torch_export"), default="torchscript"
    )
    export.add_argument("--out", required=True, metavar="PATH")
    add_db(export)
    export.add_argument("--json", action="store_true")
    export.set_defaults(handler=cmd_model_export)


def parse_input_shape(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[x×,]\s*(\d+)\s*[x×,]\s*(\d+)\s*", text)
    if not match:
        raise UserError(f"--input must look like 3x224x224 (channels×height×width), not {text!r}.")
    channels, height, width = (int(g) for g in match.groups())
    if not (1 <= channels <= 64 and 1 <= height <= 8192 and 1 <= width <= 8192):
        raise UserError(
            f"--input {text} is out of range: 1–64 channels and 1–8192 pixels per side."
        )
    return channels, height, width


def cmd_model_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.models import all_presets

    if getattr(args, "weights", None) is not None:
        return list_published_weights(args.weights, args.json, out)

    if args.timm is not None:
        return _list_timm(args, out)
    from cnn_lab.engine.models.layers import layer_kinds

    kinds = layer_kinds()
    if args.json:
        payload = {
            "presets": [
                {
                    "name": p.name,
                    "family": p.family,
                    "editable": p.editable,
                    "description": p.description,
                }
                for p in all_presets()
            ],
            "layers": [
                {
                    "kind": k.kind,
                    "category": k.category,
                    "params": k.default_params(),
                    "description": k.description,
                }
                for k in kinds
            ],
        }
        payload["published_weights"] = published_weights_payload()
        out.write(json.dumps(payload) + "\n")
        return 0
    out.write("presets:\n")
    for p in all_presets():
        out.write(f"  {p.name:<20} {p.family:<12} {p.description}\n")
    out.write("layers:\n")
    for k in kinds:
        out.write(f"  {k.kind:<20} {k.category:<14} {k.description}\n")
    write_published_weights(out)
    out.write(
        "also: any timm model ('model list --timm TEXT' searches them, 'train --timm NAME'), "
        "and your own nn.Module class ('train --module FILE.py:CLASS').\n"
    )
    return 0


def _list_timm(args: argparse.Namespace, out: TextIO) -> int:
    """``model list --timm TEXT``: timm's models matching TEXT, best match first."""
    from cnn_lab.engine.models.timm_source import search_timm

    if args.limit < 1:
        raise UserError("--limit must be at least 1.")
    found = search_timm(args.timm, args.limit, with_params=args.params)
    if args.json:
        out.write(json.dumps({"timm": [info.to_dict() for info in found]}) + "\n")
        return 0
    if not found:
        out.write(f"no timm model matches {args.timm!r}\n")
        return 0
    for info in found:
        size = "" if info.params is None else format_count(info.params)
        count = len(info.pretrained_tags)
        tags = f"{count} pretrained" if count else ""
        out.write(f"  {info.name:<36} {info.family:<16} {size:>8}  {tags}\n")
    return 0


def list_published_weights(preset: str, as_json: bool, out: TextIO) -> int:
    """``model list --weights PRESET``: that network's published weights, default first."""
    from cnn_lab.engine.models import get_preset
    from cnn_lab.engine.models.published_weights import published_weights

    get_preset(preset)  # an unknown name is a sentence listing the known ones
    listed = published_weights(ArchitectureSpec(preset=preset))
    if as_json:
        out.write(json.dumps({"preset": preset, "weights": [_weights_dict(w) for w in listed]}))
        out.write("\n")
        return 0
    if not listed:
        out.write(f"{preset} has no published weights; train it from scratch or --pretrained\n")
        return 0
    ordered = sorted(listed, key=lambda w: not w.is_default)
    for w in ordered:
        out.write(f"  {_weights_line(w)}\n")
    out.write(f"use one: cnn-lab train --model {preset} --weights {ordered[0].name}\n")
    return 0


def write_published_weights(out: TextIO) -> None:
    """The presets' published weights, one line each, under ``model list``."""
    listed = _all_published()
    if not listed:
        return
    out.write("published weights (train --model PRESET --weights NAME; downloaded once):\n")
    for preset, weights in listed.items():
        for w in weights:
            out.write(f"  {preset:<20} {_weights_line(w)}\n")


def published_weights_payload() -> dict[str, list[dict[str, Any]]]:
    """``{preset: [weights as dicts]}`` for every preset that has published weights."""
    return {preset: [_weights_dict(w) for w in ws] for preset, ws in _all_published().items()}


def _all_published() -> dict[str, list[Any]]:
    from cnn_lab.engine.models import all_presets
    from cnn_lab.engine.models.published_weights import published_weights

    listed = {p.name: published_weights(ArchitectureSpec(preset=p.name)) for p in all_presets()}
    return {name: weights for name, weights in listed.items() if weights}


def _weights_dict(w: Any) -> dict[str, Any]:
    return {
        "name": w.name,
        "default": w.is_default,
        "accuracy": w.accuracy,
        "dataset": w.dataset,
        "file_mb": w.file_mb,
        "params": w.params,
        "categories": w.categories,
        "crop_size": w.crop_size,
        "resize_size": w.resize_size,
        "mean": w.mean,
        "std": w.std,
        "url": w.url,
    }


def _weights_line(w: Any) -> str:
    accuracy = f"{w.accuracy:.1f}% top-1" if w.accuracy is not None else "accuracy unknown"
    size = f"{w.file_mb:.1f} MB" if w.file_mb is not None else ""
    side = f"{w.crop_size} px" if w.crop_size else ""
    default = "  (default)" if w.is_default else ""
    return f"{w.name:<16} {accuracy:>12}  {size:>9}  {side:>6}{default}"


def cmd_model_summary(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.models.architecture_summary import summarize_architecture

    if args.network is None and not (args.module or args.timm):
        raise UserError(
            "Name a network: a preset, a spec file, --timm NAME or --module FILE.py:CLASS."
        )
    if args.network is not None and (args.module or args.timm):
        raise UserError("Name one network: a preset or spec file, or --timm, or --module.")
    spec = architecture_from_args(args, args.network or "")
    changes = {k: v for k, v in (("width", args.width), ("depth", args.depth)) if v is not None}
    if changes:
        spec = ArchitectureSpec.from_dict({**spec.model_dump(), **changes})
    channels, height, width = parse_input_shape(args.input or DEFAULT_INPUT)
    classes = args.classes if args.classes is not None else DEFAULT_CLASSES
    if not 1 <= classes <= 100_000:
        raise UserError(f"--classes must be between 1 and 100,000 (got {classes}).")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError("--batch-size must be at least 1.")
    shape = InputShape(channels, height, width, classes)
    summary = summarize_architecture(spec, shape)
    if args.json:
        payload = summary.to_dict(batch_size=args.batch_size, optimizer=args.optimizer)
        payload["network"] = _network_name(spec)
        payload["classes"] = classes
        out.write(json.dumps(payload) + "\n")
        return 0
    _print_summary(out, spec, shape, summary, args.batch_size, args.optimizer)
    return 0


def _print_summary(
    out: TextIO,
    spec: ArchitectureSpec,
    shape: InputShape,
    summary: Any,
    batch_size: int | None,
    optimizer: str,
) -> None:
    rows = [("layer", "output", "params", "MACs", "activations", "RF")]
    for layer in summary.layers:
        rows.append(
            (
                layer.name,
                "×".join(str(d) for d in layer.output_shape),
                format_count(layer.params),
                format_count(layer.macs),
                format_bytes(layer.activation_bytes),
                "" if layer.receptive_field is None else str(layer.receptive_field),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(w) for cell, w in zip(row[2:], widths[2:], strict=True)]
        out.write("  ".join(cells).rstrip() + "\n")
    out.write(
        f"{_network_name(spec)} for {shape.channels}×{shape.height}×{shape.width}, {shape.classes} "
        f"classes: {summary.params:,} parameters ({summary.trainable_params:,} trainable), "
        f"{format_count(summary.macs)} MACs per image, receptive field "
        f"{summary.receptive_field or '-'} px\n"
    )
    if batch_size:
        memory = summary.training_memory_bytes(batch_size, optimizer)
        out.write(
            f"estimated training memory at batch {batch_size} with {optimizer}: "
            f"{format_bytes(memory)}\n"
        )


def _network_name(spec: ArchitectureSpec) -> str:
    """What the summary calls the network: the preset, the timm model or file:class."""
    if spec.module is not None:
        return f"{spec.module.path}:{spec.module.class_name}"
    return spec.timm_model or spec.preset


def cmd_model_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cnn_lab.engine.models.export import export_run
    from cnn_lab.engine.store import resolve_location

    result, trained = export_run(resolve_location(args.db), args.run_id, args.out, args.format)
    if args.json:
        shape = trained.shape
        payload = {
            "run_id": args.run_id,
            "format": result.format,
            "path": str(result.path),
            "bytes": result.bytes,
            "max_abs_diff": result.max_abs_diff,
            "checked_with": result.checked_with,
            "input_shape": [shape.channels, shape.height, shape.width],
            "classes": trained.classes,
        }
        out.write(json.dumps(payload) + "\n")
    else:
        out.write(result.sentence() + "\n")
    return 0
