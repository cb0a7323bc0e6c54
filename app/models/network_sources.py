"""Networks built by code the panel does not hold as layers: a timm model, the person's module.

The texts the Architecture panel shows for them (the description under "Start from", the
warning before running someone's file), the classes a module file defines (read with
Python's ``ast``, so nothing in the file runs), the keyword arguments as JSON, and whether
timm is installed (asked of the import system without importing timm, which takes seconds).
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models.registry import Preset
from cnn_lab.engine.specs import ArchitectureSpec
from cnn_lab.engine.specs.architecture import MODULE, TIMM

TIMM_ENTRY = "timm model…"
MODULE_ENTRY = "Your own module…"
MODULE_FILES = "Python files (*.py);;All files (*)"
TIMM_TIP = "Any network from timm (pip install 'cnn-lab[timm]'): search by name or family."
MODULE_TIP = (
    "A torch.nn.Module class from your own Python file. cnn-lab runs that file's code to "
    "build it, and records the code with every run."
)
TIMM_INSTALL = "timm is not installed: pip install 'cnn-lab[timm]' adds it."
_MODULE_BASES = {"Module", "nn.Module", "torch.nn.Module"}


def timm_available() -> bool:
    """Whether timm can be imported, without importing it."""
    return importlib.util.find_spec("timm") is not None


def description(spec: ArchitectureSpec, preset: Preset | None) -> str:
    """The line under "Start from": what the network is and what builds it."""
    if spec.preset == TIMM:
        return (
            f"timm's {spec.timm_model}, built by timm (timm.create_model) for this dataset's "
            "classes and channels. Choose the entry again to pick another timm model."
        )
    if spec.preset == MODULE and spec.module is not None:
        source = spec.module
        return (
            f"{source.class_name} from {Path(source.path).name}, your own code: cnn-lab ran "
            "it to build this network and records it with every run. Choose the entry again "
            "to pick another file or class."
        )
    if spec.is_custom:
        return "Your own network, built from the layers below."
    return preset.description if preset else f"There is no preset {spec.preset!r}."


def entry_text(spec: ArchitectureSpec, kind: str) -> str:
    """The combo's text for the timm or module entry: what is chosen, or the invitation."""
    if kind == TIMM:
        return f"timm: {spec.timm_model}" if spec.preset == TIMM else TIMM_ENTRY
    if spec.preset == MODULE and spec.module is not None:
        return f"Module: {spec.module.class_name} ({Path(spec.module.path).name})"
    return MODULE_ENTRY


def module_warning(path: str | Path) -> str:
    """What choosing a module file means, said plainly before anything runs."""
    return (
        f"cnn-lab will run the code in {Path(path).name} to build this network. "
        "Only use files you trust."
    )


def untrusted_text(spec: ArchitectureSpec) -> str:
    """Why the summary waits: a module whose code nobody agreed to run here ("" if none).

    A spec loaded from a file or a stored run carries its module's code; building it would
    run that code, so the panel asks first, as choosing the file does.
    """
    from cnn_lab.engine.models.trust import is_trusted

    source = spec.module
    if spec.preset != MODULE or source is None or is_trusted(source.sha256):
        return ""
    return (
        f"{module_warning(source.path)} Choose it under 'Your own module…' to agree; "
        "until then it is not built here."
    )


def module_classes(code: str, filename: str = "the file") -> list[str]:
    """The classes ``code`` defines at its top level, nn.Module subclasses first.

    Parsed with ``ast``: nothing in the file runs. A file that does not parse is a sentence
    with the line and its text.
    """
    try:
        tree = ast.parse(code, filename=filename)
    except SyntaxError as exc:
        line = (exc.text or "").strip()
        where = f" at line {exc.lineno}" + (f" ({line})" if line else "")
        raise UserError(f"{filename} is not valid Python{where}: {exc.msg}.") from None
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    if not classes:
        raise UserError(
            f"{filename} defines no class.",
            "Pick the file that holds your network's torch.nn.Module class.",
        )

    def is_module(node: ast.ClassDef) -> bool:
        return any(ast.unparse(base) in _MODULE_BASES for base in node.bases)

    return [c.name for c in sorted(classes, key=lambda c: not is_module(c))]


def parse_kwargs(text: str) -> dict[str, Any]:
    """The keyword arguments typed as JSON, or a sentence about the box (not the CLI flag)."""
    from cnn_lab.engine.models.module_source import parse_module_kwargs

    try:
        return parse_module_kwargs(text.strip())
    except UserError as exc:
        message = exc.message.replace("--module-kwargs is", "The keyword arguments are")
        message = message.replace("--module-kwargs", "The keyword arguments")
        raise UserError(message, exc.hint) from None


@dataclass(frozen=True)
class TimmRow:
    """One timm search result as the picker's table shows it."""

    name: str
    family: str
    tags: str
    params: str
    tip: str


def timm_row(info: Any) -> TimmRow:
    """A ``TimmModelInfo`` as texts: tags joined, parameters in millions ("—" if unknown)."""
    tags = ", ".join(info.pretrained_tags) or "none"
    params = f"{info.params / 1e6:.1f} M" if info.params else "—"
    size = info.input_size
    trained = f"Its default weights were trained at {size[1]}×{size[2]}. " if size else ""
    return TimmRow(info.name, info.family, tags, params, f"{trained}Pretrained tags: {tags}.")


def timm_status(text: str, found: int, limit: int) -> str:
    """The line under the search field."""
    if found == 0:
        return f"No timm model matches {text!r}." if text else "Type part of a name or a family."
    more = " (the first ones; type more to narrow it down)" if found >= limit else ""
    return f"{found} timm models{more}."
