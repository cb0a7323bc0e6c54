"""The person's own ``torch.nn.Module`` class as an architecture source: ``file.py:ClassName``.

``read_module_source`` reads the file once and records its whole text and sha256 in a
``ModuleSource``; ``build_module`` only ever executes that recorded text, never the file
again, so resume, evaluate, predict, export and reports rebuild exactly the network that
trained even after the file changed or vanished. The file must therefore be self-contained:
it may import installed packages (torch, timm...) but not sibling files next to it.

Running the file's code is the person's decision (``engine/models/trust.py`` remembers it for
the window). Whatever goes wrong in that code (a syntax error, an import that fails, an
exception in ``__init__`` or ``forward``, an output of the wrong shape) comes back as one
``UserError`` naming the file, the line number and that line's text, and for ``forward`` the
layer that was running, so the app never crashes on someone's file.
"""

from __future__ import annotations

import inspect
import json
import linecache
import sys
import traceback
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.specs.architecture import MAX_MODULE_BYTES, ModuleSource, code_sha256

if TYPE_CHECKING:
    from torch import nn

    from cnn_lab.engine.models.registry import InputShape

CLASSES_ALIASES = ("num_classes", "n_classes", "classes", "num_outputs")
"""Constructor arguments that receive the dataset's number of classes, first match wins."""
CHANNELS_ALIASES = ("in_channels", "in_chans", "input_channels", "n_channels", "num_channels")
"""Constructor arguments that receive the images' channel count, first match wins."""
SIZE_ALIASES = ("image_size", "img_size", "input_size")
"""Constructor arguments that receive the (square) image side, when the images are square."""

_CHECK_BATCH = 2  # BatchNorm-friendly, and catches a network that hard-codes batch one


def parse_module_ref(text: str) -> tuple[str, str]:
    """``path/to/file.py:ClassName`` → (path, class name), refused in words when malformed."""
    path, sep, class_name = text.strip().rpartition(":")
    if not sep or not path or not class_name.isidentifier():
        raise UserError(
            f"--module must look like path/to/file.py:ClassName, not {text!r}.",
            hint="Name the Python file, a colon, and the nn.Module class inside it.",
        )
    return path, class_name


def parse_module_kwargs(text: str | None) -> dict[str, Any]:
    """The JSON object of keyword arguments given on a command line ('' or None: none)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"--module-kwargs is not valid JSON ({exc.msg} at character {exc.pos}).",
            hint="Write a JSON object such as '{\"width\": 32}'.",
        ) from None
    if not isinstance(value, dict):
        raise UserError(
            "--module-kwargs must be a JSON object of keyword arguments, such as '{\"width\": 32}'."
        )
    return value


def read_module_source(
    path: str | Path, class_name: str, kwargs: Mapping[str, Any] | None = None
) -> ModuleSource:
    """Read ``path`` once and record its text and hash with the class name and kwargs.

    Nothing is executed here: ``build_module`` does that, and the caller decides first
    whether the file is trusted.
    """
    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
        if size > MAX_MODULE_BYTES:
            raise UserError(
                f"The module file {file} is {size:,} bytes; cnn-lab records the whole file "
                f"with every run, so it takes files up to {MAX_MODULE_BYTES:,} bytes.",
                hint="Keep the network's class in a smaller file of its own.",
            )
        raw = file.read_bytes()
    except FileNotFoundError:
        raise UserError(f"There is no module file {file}.") from None
    except IsADirectoryError:
        raise UserError(f"{file} is a folder; name the Python file that holds the class.") from None
    except OSError as exc:
        raise UserError(f"Cannot read the module file {file}: {exc.strerror or exc}.") from None
    try:
        code = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"The module file {file} is not UTF-8 text (byte {exc.start} cannot be decoded).",
            hint="Save it as UTF-8, as Python source files normally are.",
        ) from None
    return ModuleSource.from_dict(
        {
            "path": str(file),
            "class_name": class_name,
            "kwargs": dict(kwargs or {}),
            "code": code,
            "sha256": code_sha256(code),
        }
    )


def build_module(source: ModuleSource, shape: InputShape) -> nn.Module:
    """Execute the recorded code, build the class for ``shape`` and check its output shape.

    Builds on the ambient default device (``with torch.device("meta")`` for a free summary).
    """
    cls = _load_class(source)
    kwargs = _arguments(cls, source, shape)
    with _user_code(source, f"{source.class_name}(...) failed to build"):
        model = cls(**kwargs)
    if not _is_module(model):
        raise UserError(f"{source.class_name}(...) in {source.path} did not return an nn.Module.")
    check_output(model, source, shape)
    return model


def module_name(source: ModuleSource) -> str:
    """The name the recorded code runs under: one per code hash, so pickling finds it."""
    return f"cnn_lab_user_module_{(source.sha256 or code_sha256(source.code))[:16]}"


def code_filename(source: ModuleSource) -> str:
    """The filename tracebacks show for the recorded code: the path, marked as a copy."""
    return f"<{source.path}>"


# --- executing the recorded code ---------------------------------------------------------------


def _load_class(source: ModuleSource) -> type:
    import torch  # noqa: F401  (torch loads before the person's file imports it)

    if not source.code.strip():
        raise UserError(
            f"The spec records no code for the module {source.path}:{source.class_name}.",
            hint="Pick the file again so its code is recorded with the run.",
        )
    filename = code_filename(source)
    # Tracebacks (and inspect.getsource, which torch.export may call) read the recorded text
    # from linecache; a None mtime keeps checkcache from dropping it for a missing file.
    lines = source.code.splitlines(keepends=True)
    linecache.cache[filename] = (len(source.code), None, lines, filename)
    try:
        compiled = compile(source.code, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        text = (exc.text or _line(source, exc.lineno or 0)).strip()
        where = f"{source.path}, line {exc.lineno}" + (f": {text}" if text else "")
        raise UserError(
            f"The module file has a syntax error ({exc.msg}) at {where}.",
            hint="Fix the file and pick it again.",
        ) from None
    name = module_name(source)
    namespace = types.ModuleType(name)
    namespace.__file__ = filename
    sys.modules[name] = namespace  # classes pickle and deepcopy by their module's name
    with _user_code(source, f"Importing the module file {source.path} failed"):
        exec(compiled, namespace.__dict__)
    cls = getattr(namespace, source.class_name, None)
    modules = sorted(
        n for n, v in vars(namespace).items() if _is_module_class(v) and v.__module__ == name
    )
    if cls is None:
        found = ", ".join(modules) or "none"
        raise UserError(
            f"The module file {source.path} has no class {source.class_name} "
            f"(nn.Module classes defined there: {found})."
        )
    if not _is_module_class(cls):
        raise UserError(
            f"{source.class_name} in {source.path} is not a torch.nn.Module subclass, so it "
            "cannot be trained.",
            hint=f"nn.Module classes defined there: {', '.join(modules) or 'none'}.",
        )
    return cls


def _arguments(cls: type, source: ModuleSource, shape: InputShape) -> dict[str, Any]:
    """The recorded kwargs, plus the dataset's classes/channels/size where the class asks."""
    kwargs = dict(source.kwargs)
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a signature Python cannot read: pass kwargs as they are
        return kwargs
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    named = [n for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = [k for k in kwargs if k not in parameters]
    if unknown and not takes_any:
        raise UserError(
            f"{source.class_name} in {source.path} takes no argument "
            f"{', '.join(map(repr, unknown))} (it takes: {', '.join(named) or 'none'})."
        )
    fills: list[tuple[tuple[str, ...], int | None]] = [
        (CLASSES_ALIASES, shape.classes),
        (CHANNELS_ALIASES, shape.channels),
        (SIZE_ALIASES, shape.height if shape.height == shape.width else None),
    ]
    for aliases, value in fills:
        if value is None or any(a in kwargs for a in aliases):
            continue
        for alias in aliases:
            if alias in parameters:
                kwargs[alias] = value
                break
    return kwargs


def check_output(model: nn.Module, source: ModuleSource, shape: InputShape) -> None:
    """Run one small batch through ``model`` and refuse any output but (N, classes) logits.

    On the meta device this costs nothing; otherwise it is a real batch of two images in eval
    mode without gradients, with the random state put back, so it neither updates BatchNorm
    statistics nor shifts the run's seed. Lazy layers get their shapes here too.
    """
    import torch

    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.get_default_device()
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)
    modes = {module: module.training for module in model.modules()}
    running: list[str] = []
    handles = _track_layers(model, running)
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.eval()
            x = torch.zeros(
                (_CHECK_BATCH, shape.channels, shape.height, shape.width),
                device=device,
                dtype=dtype,
            )
            with _user_code(source, f"{source.class_name}.forward failed", running):
                output = model(x)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    wanted = (_CHECK_BATCH, shape.classes)
    size = f"{shape.channels}×{shape.height}×{shape.width}"
    if not isinstance(output, torch.Tensor):
        raise UserError(
            f"{source.class_name}.forward returns a {type(output).__name__}, but cnn-lab needs "
            f"one tensor of class scores shaped (batch, {shape.classes}).",
            hint="Return only the logits from forward.",
        )
    if tuple(output.shape) != wanted:
        got = "×".join(str(d) for d in output.shape) or "a scalar"
        raise UserError(
            f"{source.class_name} gives an output of shape {got} for a batch of "
            f"{_CHECK_BATCH} images of {size}, but needs {_CHECK_BATCH}×{shape.classes} "
            f"(batch × {shape.classes} classes).",
            hint="Make its last layer output num_classes scores per image (take num_classes "
            "as an argument and cnn-lab passes the dataset's count).",
        )


# --- reporting the person's error with its own line ---------------------------------------------


@contextmanager
def _user_code(source: ModuleSource, what: str, running: list[str] | None = None) -> Iterator[None]:
    """Turn anything the person's code raises into one sentence with its file, line and text."""
    try:
        yield
    except UserError:
        raise
    except (Exception, SystemExit) as exc:  # their code may raise anything
        layer = f" in layer {running[-1]}" if running else ""
        detail = (str(exc).strip().splitlines() or [""])[0].rstrip(".")
        kind = type(exc).__name__ + (f": {detail}" if detail else "")
        raise UserError(
            f"{what}{layer}: {kind}{_where(source, exc)}.",
            hint="Fix the file and pick it again.",
        ) from None


def _where(source: ModuleSource, exc: BaseException) -> str:
    """', at file.py line N: <text>' for the innermost frame in the recorded code, or ''."""
    filename = code_filename(source)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    if not frames:
        return ""
    lineno = frames[-1].lineno or 0
    text = _line(source, lineno).strip()
    return f", at {source.path} line {lineno}" + (f": {text}" if text else "")


def _line(source: ModuleSource, lineno: int) -> str:
    lines = source.code.splitlines()
    return lines[lineno - 1] if 0 < lineno <= len(lines) else ""


def _track_layers(model: nn.Module, running: list[str]) -> list[Any]:
    """Hooks that keep ``running`` as the stack of submodules now inside their forward.

    After an exception the stack is left as it was, so its top names the innermost layer
    that was running when the error happened.
    """
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue
        label = f"{name} ({type(module).__name__})"

        def enter(_m: Any, _args: Any, label: str = label) -> None:
            running.append(label)

        def leave(_m: Any, _args: Any, _out: Any) -> None:
            if running:
                running.pop()

        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    return handles


def _is_module_class(value: Any) -> bool:
    from torch import nn

    return isinstance(value, type) and issubclass(value, nn.Module)


def _is_module(value: Any) -> bool:
    from torch import nn

    return isinstance(value, nn.Module)


__all__ = [
    "build_module",
    "check_output",
    "module_name",
    "parse_module_kwargs",
    "parse_module_ref",
    "read_module_source",
]
