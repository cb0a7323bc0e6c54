"""Which module files the person has agreed to run, remembered by the sha256 of their code.

Building a network from someone's own Python file runs that file's code. On a terminal,
typing ``cnn-lab train --module file.py:Net`` is itself the decision; the window asks once per
file *content* and records the answer here, so an edited file (a new hash) is asked about
again while re-opening the same file is not. The store is a small JSON list in the user's
config folder; ``$CNN_LAB_CONFIG`` points it elsewhere (tests use it, as ``$CNN_LAB_DB`` and
``$CNN_LAB_CACHE`` do for the other paths).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import platformdirs

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.util.safe_files import write_atomic

CONFIG_ENV_VAR = "CNN_LAB_CONFIG"
_FILE_NAME = "trusted-modules.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def trust_file() -> Path:
    """Where the trusted hashes are kept."""
    folder = os.environ.get(CONFIG_ENV_VAR) or platformdirs.user_config_path("cnn-lab")
    return Path(os.path.abspath(Path(folder).expanduser())) / _FILE_NAME


def trusted_hashes() -> frozenset[str]:
    """Every trusted sha256; a missing or damaged store trusts nothing (it asks again)."""
    try:
        data = json.loads(trust_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return frozenset()
    values = data.get("sha256", []) if isinstance(data, dict) else []
    return frozenset(v for v in values if isinstance(v, str) and _SHA256.match(v))


def is_trusted(sha256: str) -> bool:
    """Whether the person already agreed to run code with this hash."""
    return sha256 in trusted_hashes()


def trust(sha256: str) -> None:
    """Remember that the person agreed to run code with this hash (written atomically)."""
    if not _SHA256.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    hashes = trusted_hashes() | {sha256}
    path = trust_file()
    try:
        write_atomic(path, json.dumps({"sha256": sorted(hashes)}, indent=1).encode("utf-8"))
    except OSError as exc:
        raise UserError(
            f"Cannot remember the trusted module in {path}: {exc.strerror or exc}.",
            hint="The network still builds; you will be asked again next time.",
        ) from None


__all__ = ["CONFIG_ENV_VAR", "is_trusted", "trust", "trust_file", "trusted_hashes"]
