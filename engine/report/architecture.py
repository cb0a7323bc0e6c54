"""The architecture section: parameters, compute, memory and the layer table of a run's net.

The network is summarised on the meta device (engine/models/architecture_summary.py), which
needs torch but no memory and no weights. Its input shape is read from the run's weights
file header (safetensors keeps it in plain JSON, no torch needed to read it), else from the
prepared images, else from the spec; without any, the section says so.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.report import text
from cnn_lab.engine.report.data import ArchitectureInfo, Fact, Table
from cnn_lab.engine.report.dataset_info import Loaded
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.specs.network_name import network_name
from cnn_lab.engine.store import RunRecord, artifact_kinds
from cnn_lab.engine.util.formatting import format_bytes, format_count, format_shape

_MAX_HEADER = 100_000_000


def weights_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its JSON header alone."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            return {}
        (size,) = struct.unpack("<Q", head)
        if size > _MAX_HEADER:
            return {}
        header = json.loads(handle.read(size))
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else {}


def input_shape(
    spec: RunSpec, record: RunRecord, artifacts: list[dict[str, Any]], loaded: Loaded
) -> tuple[int, int, int, int] | None:
    """(channels, height, width, classes) the network was built for, or None if unknown."""
    classes = len(record.summary.get("classes") or [])
    for artifact in reversed(artifacts):
        if artifact.get("kind") != artifact_kinds.WEIGHTS:
            continue
        try:
            meta = weights_metadata(artifact["path"])
            c, h, w = json.loads(meta["input_shape"])
            return int(c), int(h), int(w), len(json.loads(meta["classes"]))
        except (OSError, KeyError, ValueError, TypeError):
            continue
    if loaded.prepared is not None and classes:
        shape = loaded.prepared.images.shape
        return (shape[3] if len(shape) > 3 else 1), shape[1], shape[2], classes
    if spec.dataset.image_size and spec.dataset.channels and classes:
        side = spec.dataset.image_size
        return spec.dataset.channels, side, side, classes
    return None


def unmeasured(spec: RunSpec) -> ArchitectureInfo:
    """The section when measuring was turned off (it is the one part that loads torch)."""
    return ArchitectureInfo(
        (Fact("Network", network_name(spec.architecture)),), None, "Not measured for this report."
    )


def architecture_info(
    spec: RunSpec, record: RunRecord, artifacts: list[dict[str, Any]], loaded: Loaded
) -> ArchitectureInfo:
    a = spec.architecture
    described = [
        Fact("Network", network_name(a) + (f" ({len(a.layers)} layers)" if a.layers else "")),
        Fact("Width × depth", f"{a.width:g} × {a.depth:g}"),
        Fact("Dropout", f"{a.dropout:g}"),
        Fact(
            "Pretrained weights",
            a.pretrained or (f"published {a.weights}" if a.weights else "none"),
        ),
        Fact("Backbone frozen", "yes" if a.freeze_backbone else "no"),
    ]
    shape = input_shape(spec, record, artifacts, loaded)
    if shape is None:
        note = "The input size is unknown (no weights, no image size), so it was not measured."
        return ArchitectureInfo(tuple(described), None, note)
    try:
        from cnn_lab.engine.models.architecture_summary import summarize_architecture
        from cnn_lab.engine.models.registry import InputShape

        summary = summarize_architecture(a, InputShape(*shape))
    except UserError as exc:
        return ArchitectureInfo(tuple(described), None, f"It could not be built: {exc}")
    except Exception as exc:  # a summary is a bonus: never lose the report over it
        return ArchitectureInfo(
            tuple(described), None, f"It could not be measured: {type(exc).__name__}: {exc}."
        )
    t = spec.train
    memory = summary.training_memory_bytes(t.batch_size, t.optimizer)
    described += [
        Fact("Input", f"{shape[0]}×{shape[1]}×{shape[2]}, {shape[3]} classes"),
        Fact("Parameters", f"{format_count(summary.params)} ({summary.params:,})"),
        Fact("Trainable parameters", f"{summary.trainable_params:,}"),
        Fact("MACs per image", format_count(summary.macs)),
        Fact("FLOPs per image", format_count(2 * summary.macs)),
        Fact("Weights in memory", format_bytes(summary.param_bytes)),
        Fact("Saved activations per image", format_bytes(summary.saved_bytes_per_image)),
        Fact(
            f"Training memory at batch {t.batch_size} ({t.optimizer})",
            f"about {format_bytes(memory)}",
        ),
        Fact(
            "Receptive field",
            f"{summary.receptive_field} px" if summary.receptive_field else text.MISSING,
        ),
    ]
    rows = tuple(
        (
            layer.name,
            layer.kind,
            format_shape(layer.output_shape),
            f"{layer.params:,}",
            format_count(layer.macs),
            format_bytes(layer.activation_bytes),
            str(layer.receptive_field) if layer.receptive_field else text.MISSING,
        )
        for layer in summary.layers
    )
    table = Table(
        ("Layer", "Kind", "Output", "Params", "MACs", "Activations", "RF"),
        rows,
        (False, False, False, True, True, True, True),
    )
    return ArchitectureInfo(tuple(described), table)
