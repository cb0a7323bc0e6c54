"""The distribution's layout: every package folder is installed, and the import contracts hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_in_pyproject() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]
    on_disk = set()
    for name, folder in setuptools["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            on_disk.add(".".join([name, *relative.parts]))
    assert on_disk == set(setuptools["packages"]), (
        "pyproject [tool.setuptools] packages must list exactly the package folders; "
        f"missing {sorted(on_disk - set(setuptools['packages']))}, "
        f"extra {sorted(set(setuptools['packages']) - on_disk)}"
    )


def test_no_bare_app_or_engine_package_is_installed() -> None:
    packages = _pyproject()["tool"]["setuptools"]["packages"]
    assert all(p.startswith("cnn_lab.") for p in packages)


def test_import_contracts_are_kept() -> None:
    """engine/ imports no Qt, panels do not import each other (see pyproject.toml)."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is part of the dev extra"
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "broken" in done.stdout and ", 0 broken" in done.stdout
