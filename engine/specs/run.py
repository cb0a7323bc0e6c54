"""RunSpec: everything one training run needs, in one JSON document with a schema version."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, ClassVar

from pydantic import Field, ValidationError

from cnn_lab.engine.errors import SpecError
from cnn_lab.engine.specs.architecture import ArchitectureSpec
from cnn_lab.engine.specs.base import Spec, load_json, spec_error
from cnn_lab.engine.specs.dataset import DatasetSpec
from cnn_lab.engine.specs.train import TrainSpec

SCHEMA_VERSION = 1


HASH_NEUTRAL_DEFAULTS: tuple[tuple[str, str, object], ...] = (
    ("train", "deterministic", False),
    ("architecture", "weights", ""),
    ("architecture", "timm_model", ""),
    ("architecture", "module", None),
    ("dataset", "normalize", "auto"),
    ("train", "fine_tune", {"mode": "auto", "head_epochs": 1, "lr_ratio": 100.0, "groups": 3}),
    ("train", "time_limit_s", None),
    ("train", "stop_at_accuracy", None),
)


class RunSpec(Spec):
    """One run: data, architecture and recipe. Saved with the run and hashed to find twins."""

    schema_version: int = SCHEMA_VERSION
    name: Annotated[str, Field(max_length=200)] = ""
    tags: tuple[Annotated[str, Field(min_length=1, max_length=60)], ...] = ()
    dataset: DatasetSpec = DatasetSpec()
    architecture: ArchitectureSpec = ArchitectureSpec()
    train: TrainSpec = TrainSpec()

    what: ClassVar[str] = "run spec"

    def to_json(self, *, indent: int | None = None) -> str:
        return self.model_dump_json(indent=indent)

    def spec_hash(self) -> str:
        """A hash of what changes the result: the name and tags are left out."""
        payload = self.model_dump(mode="json", exclude={"name", "tags"})
        # Fields added after runs were recorded leave the hash alone at their defaults, so
        # a spec hashes as it did when it was stored (the queue and the sweeps match by it).
        for section, field, default in HASH_NEUTRAL_DEFAULTS:
            if payload.get(section, {}).get(field) == default:
                del payload[section][field]
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @classmethod
    def from_json(cls, text: str | bytes) -> RunSpec:
        return cls.from_dict(load_json(text, what=cls.what))

    @classmethod
    def from_dict(cls, data: Any) -> RunSpec:
        data = migrate(data)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise spec_error(exc, what="run spec") from None


# Each entry upgrades a document from version N to N+1. Version 1 is the first, so the table
# is empty; the mechanism is here so that old files keep loading when fields change.
_MIGRATIONS: dict[int, Any] = {}


def migrate(data: Any) -> dict[str, Any]:
    """Bring a RunSpec document from any older schema version up to SCHEMA_VERSION."""
    if not isinstance(data, dict):
        raise SpecError("The run spec must be a JSON object with dataset, architecture and train.")
    data = dict(data)
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SpecError(f"The run spec has an invalid schema_version ({version!r}).")
    if version > SCHEMA_VERSION:
        raise SpecError(
            f"The run spec was written by a newer cnn-lab (schema {version}; this one reads up "
            f"to {SCHEMA_VERSION}).",
            hint="Update cnn-lab to open it.",
        )
    while version < SCHEMA_VERSION:
        data = _MIGRATIONS[version](data)
        version += 1
        data["schema_version"] = version
    return data
