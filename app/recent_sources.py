"""The data sources a person opened lately, kept in the config folder across sessions."""

from __future__ import annotations

import json
from pathlib import Path

MAX_RECENT = 8


def _recent_file() -> Path:
    import platformdirs

    return platformdirs.user_config_path("cnn-lab") / "recent-sources.json"


def load_recent_sources() -> list[str]:
    try:
        data = json.loads(_recent_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return (
        [s for s in data if isinstance(s, str) and s][:MAX_RECENT] if isinstance(data, list) else []
    )


def remember_source(source: str) -> list[str]:
    """Put ``source`` first in the recent list (saved beside the settings); returns the list."""
    recent = [source] + [s for s in load_recent_sources() if s != source]
    recent = recent[:MAX_RECENT]
    path = _recent_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(recent, indent=1), encoding="utf-8")
    except OSError:
        pass  # a read-only config folder only costs the list
    return recent
