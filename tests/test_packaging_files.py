"""The packaging files are in order without building anything: spec, entry, build script,
.desktop entry and icons (packaging/PACKAGING.md says how to build)."""

from __future__ import annotations

import ast
import configparser
import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
RESOURCES = ROOT / "resources"
ICON_SIZES = (48, 128, 256)


def test_the_spec_parses_and_names_the_entry() -> None:
    source = (PACKAGING / "cnn-lab.spec").read_text(encoding="utf-8")
    tree = ast.parse(source, filename="cnn-lab.spec")
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    assert constants["ENTRY"] == "entry.py"
    assert constants["APP_NAME"] == "cnn-lab"
    assert (PACKAGING / constants["ENTRY"]).is_file()
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert {"Analysis", "PYZ", "EXE", "COLLECT"} <= called  # one folder, not one file


def test_the_entry_calls_freeze_support_before_main() -> None:
    source = (PACKAGING / "entry.py").read_text(encoding="utf-8")
    ast.parse(source)
    assert source.index("multiprocessing.freeze_support()") < source.index("sys.exit(main())")
    assert "from cnn_lab.app.main import main" in source


def test_the_desktop_entry_has_the_required_keys() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(RESOURCES / "cnn-lab.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    for key in ("Name", "Exec", "Icon", "Type", "Categories"):
        assert entry.get(key), key
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == "cnn-lab"
    assert entry["Icon"] == "cnn-lab"
    assert entry["Categories"].endswith(";")


@pytest.mark.parametrize("size", ICON_SIZES)
def test_the_png_icons_load_at_their_size(size: int) -> None:
    from PySide6.QtGui import QImage

    image = QImage(str(RESOURCES / f"cnn-lab-{size}.png"))
    assert not image.isNull()
    assert (image.width(), image.height()) == (size, size)
    assert image.hasAlphaChannel()


def test_the_svg_icon_renders() -> None:
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(RESOURCES / "cnn-lab.svg"))
    assert renderer.isValid()
    assert renderer.defaultSize().width() == renderer.defaultSize().height()


def test_the_icons_and_desktop_entry_are_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["cnn_lab.resources"]
    names = ["cnn-lab.svg", "cnn-lab.desktop", *(f"cnn-lab-{s}.png" for s in ICON_SIZES)]
    for name in names:
        assert any(fnmatch.fnmatch(name, g) for g in globs), name


def test_build_script_help_works() -> None:
    result = subprocess.run(
        [sys.executable, str(PACKAGING / "build.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--out" in result.stdout


def _spec_hidden_imports() -> tuple[set[str], set[str]]:
    """What the spec hands PyInstaller as hidden imports: the modules its ``hiddenimports``
    lists name, and the packages it gathers whole with ``collect_submodules``."""
    tree = ast.parse((PACKAGING / "cnn-lab.spec").read_text(encoding="utf-8"))
    listed: set[str] = set()
    collected: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.AugAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AugAssign) else node.targets
            names = any(isinstance(t, ast.Name) and t.id == "hiddenimports" for t in targets)
            if names and isinstance(node.value, ast.List):
                listed |= {
                    e.value
                    for e in node.value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                }
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "collect_submodules"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            collected.add(node.args[0].value)
    return listed, collected


PSYCOPG_IMPLEMENTATIONS = {
    "binary": ("psycopg_binary", "psycopg_binary.pq", "psycopg_binary._psycopg"),
    "c": ("psycopg_c", "psycopg_c.pq", "psycopg_c._psycopg"),
}
"""The compiled modules psycopg picks at run time, by the extra that installs them."""


def test_the_spec_names_what_a_postgresql_store_imports() -> None:
    """A frozen build opens a postgresql:// store: psycopg, the compiled implementation
    pyproject.toml installs (chosen by psycopg at run time, so PyInstaller cannot follow it),
    a pool if one is a dependency, and SQLAlchemy's psycopg dialect for the sweep's Optuna
    study (loaded by name)."""
    listed, collected = _spec_hidden_imports()

    def named(module: str) -> bool:
        return module in listed or any(
            module == package or module.startswith(package + ".") for package in collected
        )

    dependencies = " ".join(
        tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
            "dependencies"
        ]
    )
    extras = {
        extra.strip()
        for found in re.findall(r"\bpsycopg\[([^\]]*)\]", dependencies)
        for extra in found.split(",")
    }
    wanted = ["psycopg", "psycopg.pq", "sqlalchemy.dialects.postgresql.psycopg"]
    for extra in sorted(extras & PSYCOPG_IMPLEMENTATIONS.keys()):
        wanted += PSYCOPG_IMPLEMENTATIONS[extra]
    if "pool" in extras or re.search(r"\bpsycopg[-_]pool\b", dependencies):
        wanted.append("psycopg_pool")
    assert re.search(r"\bpsycopg\b", dependencies)  # the PostgreSQL store's driver
    assert [module for module in wanted if not named(module)] == []
    # psycopg_binary cannot be imported before psycopg, so collect_submodules finds nothing
    # in it (with only a warning): its modules must be listed.
    assert not collected & {"psycopg_binary", "psycopg_c"}
