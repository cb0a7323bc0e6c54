"""The bottleneck and evaluation sections, read from what the run's summary already holds.

Neither is computed here: the job saved the whole run's bottleneck verdict, and
``cnn-lab evaluate`` saved the evaluation. A report never trains or evaluates; it says
which command would fill a missing section.
"""

from __future__ import annotations

from typing import Any

from cnn_lab.engine.report import text
from cnn_lab.engine.report.data import BottleneckInfo, EvaluationInfo, Fact, Table, Thumbnail
from cnn_lab.engine.report.dataset_info import Loaded, png
from cnn_lab.engine.store import RunRecord


def bottleneck_info(record: RunRecord) -> BottleneckInfo:
    saved = record.summary.get("bottleneck")
    if not isinstance(saved, dict) or not saved.get("title"):
        return BottleneckInfo(
            note="No verdict was saved: the run took too few timed steps to diagnose "
            "(or it ran before cnn-lab saved verdicts)."
        )
    recommendations = []
    for rec in saved.get("recommendations") or []:
        if not isinstance(rec, dict):
            continue
        said = str(rec.get("text", ""))
        if rec.get("value") is not None:
            said += f" (set {rec.get('option')} = {text.value(rec.get('value'))})"
        recommendations.append(said)
    steps = saved.get("steps")
    evidence = [str(e) for e in saved.get("evidence_text") or []]
    if text.is_number(steps):
        evidence.append(f"Judged over {steps:,} timed steps.")
    return BottleneckInfo(
        title=str(saved["title"]),
        verdict=str(saved.get("verdict", "")),
        evidence=tuple(evidence),
        recommendations=tuple(recommendations),
        others=tuple(str(o) for o in saved.get("others") or []),
    )


def evaluation_info(record: RunRecord, loaded: Loaded | None) -> EvaluationInfo:
    saved = record.summary.get("evaluation")
    if not isinstance(saved, dict) or "accuracy" not in saved:
        return EvaluationInfo(
            evaluated=False,
            note=f"Not evaluated — run `cnn-lab evaluate {record.id}` to score it on its "
            "held-out images, then make the report again.",
        )
    facts = [
        Fact("Split", f"{saved.get('split', '?')} ({text.number(saved.get('images'))} images)"),
        Fact("Accuracy", text.percent(saved.get("accuracy"), 2)),
        Fact("Loss", text.number(saved.get("loss"))),
        Fact("Macro F1", text.fixed(saved.get("macro_f1"))),
        Fact("Weighted F1", text.fixed(saved.get("weighted_f1"))),
        Fact("Evaluated on", str(saved.get("device", "?"))),
    ]
    if saved.get("note"):
        facts.append(Fact("Note", str(saved["note"])))
    per_class = [c for c in saved.get("per_class") or [] if isinstance(c, dict)]
    table = Table(
        ("Class", "Precision", "Recall", "F1", "Support"),
        tuple(
            (
                str(c.get("name", "")),
                text.fixed(c.get("precision")),
                text.fixed(c.get("recall")),
                text.fixed(c.get("f1")),
                text.number(c.get("support")),
            )
            for c in per_class
        ),
        (False, True, True, True, True),
    )
    confusion = tuple(
        tuple(int(n) for n in row) for row in saved.get("confusion") or [] if isinstance(row, list)
    )
    mistakes = [m for m in saved.get("mistakes") or [] if isinstance(m, dict)]
    mistake_table = Table(
        ("Image", "True", "Predicted", "Confidence", "Loss"),
        tuple(
            (
                str(m.get("name", "")),
                str(m.get("true", "")),
                str(m.get("predicted", "")),
                text.percent(m.get("confidence")),
                text.fixed(m.get("loss")),
            )
            for m in mistakes
        ),
        (False, False, False, True, True),
    )
    return EvaluationInfo(
        evaluated=True,
        facts=tuple(facts),
        per_class=table,
        classes=tuple(str(c.get("name", "")) for c in per_class),
        confusion=confusion,
        mistakes=mistake_table,
        mistake_images=_mistake_images(mistakes, loaded),
    )


def _mistake_images(mistakes: list[dict[str, Any]], loaded: Loaded | None) -> tuple[Thumbnail, ...]:
    """Each mistake's image, only where the dataset row still shows the same file."""
    prepared = loaded.prepared if loaded is not None else None
    if prepared is None:
        return ()
    out = []
    for m in mistakes:
        index = m.get("index")
        if not isinstance(index, int) or not 0 <= index < len(prepared):
            continue
        if prepared.shown[index] != m.get("name"):
            continue  # the data changed since evaluation: this row is another image
        caption = f"{m.get('true')} → {m.get('predicted')} ({text.percent(m.get('confidence'), 0)})"
        out.append(Thumbnail(png(prepared.images[index]), caption, str(m.get("name", ""))))
    return tuple(out)
