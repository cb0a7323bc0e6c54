"""The tables a whole-store copy carries, their columns and their canonical row order.

Shared by both backends' ``dump_rows`` / ``load_rows`` and by transfer.py, which checks a
copy table by table; kept apart so the backends need not import the copy itself.
"""

from __future__ import annotations

# fmt: off
TABLES: dict[str, tuple[str, ...]] = {
    "experiments": ("id", "name", "kind", "created_at", "spec_json"),
    "runs": (
        "id", "experiment_id", "name", "status", "reason", "hint", "spec_json", "spec_hash",
        "dataset", "model", "device", "host", "pid", "created_at", "started_at", "ended_at",
        "heartbeat_at", "summary_json", "note", "archived",
    ),
    "run_tags": ("run_id", "tag"),
    "artifacts": ("id", "run_id", "path", "kind", "sha256", "bytes", "created_at"),
    "metrics": ("run_id", "step", "epoch", "key", "value", "time"),
    "system_samples": ("run_id", "time", "key", "value"),
}
"""What a copy carries, table by table, in the order it is written (referenced rows first).
Artifact paths are the stored ones (relative to the artifact root where they were inside
it), so they stay valid once the files are copied to the same places under the new root."""
# fmt: on

ORDER: dict[str, tuple[str, ...]] = {
    "experiments": ("id",),
    "runs": ("id",),
    "run_tags": ("run_id", "tag"),
    "artifacts": ("id",),
    "metrics": ("run_id", "key", "step", "time"),
    "system_samples": ("run_id", "key", "time"),
}
"""The canonical order of each table's rows; points that tie keep the order they were
written in (each backend adds its own insertion order)."""


__all__ = ["ORDER", "TABLES"]
