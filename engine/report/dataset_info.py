"""The dataset section: what the run trained on, its classes, and a few of its images.

The facts come from the run's own spec and summary, so they describe the run even when the
data has since moved. The class counts and findings come from the dataset's import report:
the one just prepared when the report loads images, else the ``datasets`` table or the
``report.json`` kept beside the image cache. Loading the images is optional (it reads the
cache, or regenerates a sample); when it fails the report says why and goes on.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.report import text
from cnn_lab.engine.report.data import Fact, Table, Thumbnail
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunRecord

if TYPE_CHECKING:
    from cnn_lab.engine.data.prepare import PreparedDataset

THUMB_PX = 72
"""Thumbnails' longer side: small images are enlarged (pixels kept sharp), large ones shrunk."""
MAX_EXAMPLES = 24
MAX_REPORT_BYTES = 20_000_000


@dataclass(frozen=True)
class Loaded:
    """The prepared dataset, or the sentence saying why it could not be loaded."""

    prepared: PreparedDataset | None
    note: str = ""


def load_images(spec: RunSpec, input_shape: Sequence[int] | None = None) -> Loaded:
    """Prepare the run's dataset as training did (from the cache when it is current), at the
    ``(channels, height, width)`` it recorded when known, not at a fresh auto choice."""
    from cnn_lab.engine.data.auto_preprocess import as_trained
    from cnn_lab.engine.data.prepare import prepare_dataset

    try:
        return Loaded(prepare_dataset(as_trained(spec.dataset, input_shape)))
    except UserError as exc:
        return Loaded(None, f"The dataset's images could not be read for the report: {exc}")
    except OSError as exc:
        return Loaded(None, f"The dataset's images could not be read for the report: {exc}.")


def png(image: np.ndarray, px: int = THUMB_PX) -> bytes:
    """One H×W×C uint8 image as a PNG about ``px`` on its longer side."""
    from PIL import Image

    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    picture = Image.fromarray(np.ascontiguousarray(array))
    scale = px / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    out = io.BytesIO()
    picture.resize(size, resample).save(out, format="PNG", optimize=True)
    return out.getvalue()


def import_report(record: RunRecord, loaded: Loaded) -> dict[str, Any] | None:
    """The dataset's import report as a dict, from the cheapest place that has it."""
    if loaded.prepared is not None:
        return loaded.prepared.report.model_dump(mode="json")
    key = record.summary.get("dataset_key")
    if not key:
        return None
    from cnn_lab.engine.data.paths import image_cache_dir

    for path in image_cache_dir().glob("*/*/report.json"):
        try:
            if path.stat().st_size > MAX_REPORT_BYTES:
                continue
            found = _loads(path.read_text(encoding="utf-8"))
        except OSError:
            continue
        if found and found.get("dataset_key") == key:
            return found
    return None


def _loads(raw: str) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def dataset_facts(
    spec: RunSpec, record: RunRecord, report: dict[str, Any] | None, loaded: Loaded
) -> tuple[Fact, ...]:
    d = spec.dataset
    classes = list(record.summary.get("classes") or (report or {}).get("classes") or [])
    if d.folds is not None:
        split = f"fold {d.fold + 1} of {d.folds} validates"
    else:
        split = f"{d.val_fraction:.0%} validation"
    split += f", {d.test_fraction:.0%} test" if d.test_fraction else ", no test split"
    split += f" (split seed {d.split_seed})"
    size = "the source's own"
    if loaded.prepared is not None:
        shape = loaded.prepared.images.shape
        size = f"{shape[2]}×{shape[1]}, {shape[3] if len(shape) > 3 else 1} channels"
    elif d.image_size and d.channels:
        size = f"{d.image_size}×{d.image_size}, {d.channels} channels"
    augment = ", ".join(f"{a.name} ({a.strength:g})" for a in d.augment) or "none"
    facts = [
        Fact("Source", d.source),
        Fact("Images", text.number((report or {}).get("images"))),
        Fact("Classes", str(len(classes)) if classes else text.MISSING),
        Fact("Image size", size),
        Fact("Resize", d.resize),
        Fact("Split", split),
        Fact("Quick-trial limit", text.number(d.limit) if d.limit else "none"),
        Fact("Augmentation", augment),
        Fact("Mixup / CutMix alpha", f"{d.mixup_alpha:g} / {d.cutmix_alpha:g}"),
        Fact("Class balance", d.class_balance),
    ]
    if report:
        findings = report.get("warnings") or []
        facts.append(Fact("Import findings", str(len(findings)) if findings else "none"))
        facts += [
            Fact(f"Finding ({w.get('severity', '')})", str(w.get("message", "")))
            for w in findings[:8]
        ]
        skipped = report.get("skipped") or []
        if skipped:
            facts.append(Fact("Files skipped at import", text.number(len(skipped))))
    if record.summary.get("dataset_key"):
        facts.append(Fact("Dataset key", str(record.summary["dataset_key"])))
    return tuple(facts)


def class_table(record: RunRecord, report: dict[str, Any] | None, loaded: Loaded) -> Table:
    """One row per class the run learned, with its image count when known."""
    names = [str(c) for c in record.summary.get("classes") or []]
    counts: dict[str, int] = {}
    if report and isinstance(report.get("classes"), dict):
        counts = {str(k): int(v) for k, v in report["classes"].items()}
    elif loaded.prepared is not None:
        tally = Counter(int(i) for i in loaded.prepared.labels)
        counts = {name: tally[i] for i, name in enumerate(loaded.prepared.classes)}
    names = names or list(counts)
    total = sum(counts.values())
    rows = tuple(
        (
            str(i + 1),
            name,
            text.number(counts.get(name)) if name in counts else text.MISSING,
            text.percent(counts[name] / total) if total and name in counts else text.MISSING,
        )
        for i, name in enumerate(names)
    )
    return Table(("#", "Class", "Images", "Share"), rows, (True, False, True, True))


def examples(loaded: Loaded) -> tuple[Thumbnail, ...]:
    """The first image of each class (up to ``MAX_EXAMPLES`` classes)."""
    prepared = loaded.prepared
    if prepared is None or len(prepared) == 0:
        return ()
    labels = np.asarray(prepared.labels)
    out = []
    for index, name in enumerate(prepared.classes[:MAX_EXAMPLES]):
        hits = np.flatnonzero(labels == index)
        if hits.size:
            first = int(hits[0])
            out.append(Thumbnail(png(prepared.images[first]), name, prepared.shown[first]))
    return tuple(out)
