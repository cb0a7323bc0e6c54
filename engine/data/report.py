"""The import report: what a dataset holds and everything wrong with it, before training.

Saved as JSON beside the cache, printed by ``cnn-lab data inspect`` and shown in the Data
panel. Each finding is produced by a small check in a registry, so a new check is one
function, and every check sees the same facts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["warning", "blocker"]

#: A class with fewer images than this cannot be split into train and validation at all.
MIN_IMAGES_TO_SPLIT = 2
#: Below this a class is learnable only by luck; warn.
FEW_IMAGES = 20
#: Largest-to-smallest class ratio above which the imbalance is worth acting on.
IMBALANCE_RATIO = 5.0


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    severity: Severity
    message: str
    hint: str = ""


class SkippedFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    reason: str


class SizeStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    min_width: int = 0
    max_width: int = 0
    min_height: int = 0
    max_height: int = 0
    median_width: float = 0.0
    median_height: float = 0.0


class CacheInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str = ""
    decoded: int = 0
    reused: int = 0
    build_s: float = 0.0
    bytes: int = 0


class ImportReport(BaseModel):
    """Everything ``data inspect`` prints; ``classes`` maps each name to its image count."""

    model_config = ConfigDict(frozen=True)

    source: str
    kind: str
    images: int
    classes: dict[str, int]
    image_size: int
    channels: int
    resize: str
    preprocess_reason: str = ""
    """Why ``image_size`` and ``channels`` are what they are: chosen by auto from the images,
    or as set (one sentence; empty in reports written before auto chose from the data)."""
    sizes: SizeStats = SizeStats()
    modes: dict[str, int] = Field(default_factory=dict)
    formats: dict[str, int] = Field(default_factory=dict)
    skipped: list[SkippedFile] = Field(default_factory=list)
    warnings: list[Finding] = Field(default_factory=list)
    exact_duplicates: list[list[str]] = Field(default_factory=list)
    near_duplicates: list[list[str]] = Field(default_factory=list)
    cache: CacheInfo = CacheInfo()
    dataset_key: str = ""

    @property
    def blockers(self) -> list[Finding]:
        return [w for w in self.warnings if w.severity == "blocker"]

    def skipped_reasons(self) -> Counter[str]:
        """How many files were skipped for each kind of reason (text before any colon)."""
        return Counter(s.reason.split(":")[0] for s in self.skipped)


@dataclass(frozen=True)
class Facts:
    """What the checks look at: class counts and duplicate groups as shown paths."""

    classes: dict[str, int]
    exact_duplicates: list[list[str]]
    near_duplicates: list[list[str]]
    conflicting_labels: list[list[str]]
    skipped: int


Check = Callable[[Facts], list[Finding]]
_CHECKS: list[Check] = []


def register_check(fn: Check) -> Check:
    _CHECKS.append(fn)
    return fn


def run_checks(facts: Facts) -> list[Finding]:
    findings: list[Finding] = []
    for check in _CHECKS:
        findings.extend(check(facts))
    return findings


def _n(count: int, noun: str, plural: str | None = None) -> str:
    """'1 image', '3 images': counts in messages read as sentences."""
    return f"{count:,} {noun if count == 1 else (plural or noun + 's')}"


def _names(names: list[str], most: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


@register_check
def _no_images(facts: Facts) -> list[Finding]:
    if sum(facts.classes.values()) > 0:
        return []
    return [
        Finding(
            code="no_images",
            severity="blocker",
            message="No usable images were found."
            + (f" {facts.skipped} files were skipped (see the list)." if facts.skipped else ""),
            hint="Put the images in one sub-folder per class.",
        )
    ]


@register_check
def _empty_classes(facts: Facts) -> list[Finding]:
    empty = [name for name, n in facts.classes.items() if n == 0]
    if not empty:
        return []
    return [
        Finding(
            code="empty_classes",
            severity="warning",
            message=f"{_n(len(empty), 'class', 'classes')} without usable images: "
            f"{_names(empty)}. "
            "They are left out of training.",
            hint="Add images to them or remove the folders.",
        )
    ]


@register_check
def _one_class(facts: Facts) -> list[Finding]:
    present = [name for name, n in facts.classes.items() if n > 0]
    if len(present) != 1:
        return []
    return [
        Finding(
            code="one_class",
            severity="blocker",
            message=f"Only one class has images ({present[0]!r}); a classifier needs two or more.",
            hint="Each class needs its own sub-folder (or its own label in the CSV).",
        )
    ]


@register_check
def _too_few(facts: Facts) -> list[Finding]:
    counts = {name: n for name, n in facts.classes.items() if n > 0}
    unsplittable = sorted(name for name, n in counts.items() if n < MIN_IMAGES_TO_SPLIT)
    few = sorted(name for name, n in counts.items() if MIN_IMAGES_TO_SPLIT <= n < FEW_IMAGES)
    findings = []
    if unsplittable:
        findings.append(
            Finding(
                code="class_too_small",
                severity="blocker",
                message=f"{_names(unsplittable)} have only one image, too few to split into "
                "training and validation.",
                hint=f"Give every class at least {MIN_IMAGES_TO_SPLIT} images "
                f"(better {FEW_IMAGES} or more), or remove it.",
            )
        )
    if few:
        findings.append(
            Finding(
                code="few_images",
                severity="warning",
                message=f"{_names(few)} have fewer than {FEW_IMAGES} images; "
                "their accuracy will be noisy.",
                hint="Add images or use strong augmentation.",
            )
        )
    return findings


@register_check
def _imbalance(facts: Facts) -> list[Finding]:
    counts = [n for n in facts.classes.values() if n > 0]
    if len(counts) < 2 or max(counts) < IMBALANCE_RATIO * min(counts):
        return []
    big = max(facts.classes, key=lambda k: facts.classes[k])
    small = min((k for k in facts.classes if facts.classes[k] > 0), key=lambda k: facts.classes[k])
    return [
        Finding(
            code="imbalance",
            severity="warning",
            message=f"The classes are imbalanced: {big!r} has {facts.classes[big]} images, "
            f"{small!r} only {facts.classes[small]} ({max(counts) / min(counts):.0f}:1).",
            hint="Choose a class-weighted loss or sampler under Class balance.",
        )
    ]


@register_check
def _duplicates(facts: Facts) -> list[Finding]:
    findings = []
    if facts.exact_duplicates:
        extra = sum(len(g) - 1 for g in facts.exact_duplicates)
        findings.append(
            Finding(
                code="exact_duplicates",
                severity="warning",
                message=f"{_n(extra, 'image')} "
                f"{'is an exact copy' if extra == 1 else 'are exact copies'}"
                f" of others ({_n(len(facts.exact_duplicates), 'group')}, "
                f"e.g. {_names(facts.exact_duplicates[0], 3)}). "
                "Each group is kept in one split so copies cannot leak into validation.",
                hint="Remove the copies to train on what is really there.",
            )
        )
    if facts.near_duplicates:
        findings.append(
            Finding(
                code="near_duplicates",
                severity="warning",
                message=f"{_n(len(facts.near_duplicates), 'group')} of near-identical images "
                f"(e.g. {_names(facts.near_duplicates[0], 3)}). Each group is kept in one split.",
                hint="Check whether they are the same photo resized or re-encoded.",
            )
        )
    if facts.conflicting_labels:
        findings.append(
            Finding(
                code="conflicting_labels",
                severity="warning",
                message=f"{_n(len(facts.conflicting_labels), 'image')} under two or more classes "
                f"(e.g. {_names(facts.conflicting_labels[0], 3)}).",
                hint="Decide which class each belongs to; conflicting labels cap accuracy.",
            )
        )
    return findings
