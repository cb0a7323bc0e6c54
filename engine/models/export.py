"""Export a trained network to TorchScript, ONNX or a torch.export program, and check it.

Every export is loaded back and run on the same random batch as the PyTorch model; the
largest difference is reported, and an export whose outputs differ beyond the tolerance is
refused (the file is removed), because a silently wrong model is worse than none. Files are
written to a temporary name and renamed, so a failed export never leaves half a file.

ONNX needs the optional tools (``pip install 'cnn-lab[onnx]'``: onnx, onnxscript and
onnxruntime for the check). TorchScript is deprecated by PyTorch in favour of torch.export
but still what many deployment stacks (LibTorch, older Triton) load, so both are offered.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.util.safe_files import partial_path

if TYPE_CHECKING:
    import torch
    from torch import nn

    from cnn_lab.engine.models.trained import TrainedModel

RTOL = 1e-3
ATOL = 1e-4
CHECK_BATCH = 3  # not 1 or 2, so a batch size baked into an export is caught


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    bytes: int
    max_abs_diff: float
    checked_with: str

    def sentence(self) -> str:
        return (
            f"Exported {self.format} to {self.path} ({self.bytes:,} bytes); outputs match "
            f"PyTorch within {self.max_abs_diff:.2e} (checked with {self.checked_with})."
        )


Runner = Callable[[Path, "torch.Tensor"], "torch.Tensor"]
Writer = Callable[["nn.Module", "torch.Tensor", Path], Runner]


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> Runner:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated"
        traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(str(path))

    def run(saved: Path, x: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(saved), map_location="cpu")(x)

    return run


def _write_torch_export(model: nn.Module, example: torch.Tensor, path: Path) -> Runner:
    import torch

    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))

    def run(saved: Path, x: torch.Tensor) -> torch.Tensor:
        return torch.export.load(str(saved)).module()(x)

    return run


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> Runner:
    import torch

    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise UserError(
            "ONNX export needs the optional ONNX tools, which are not installed.",
            hint="Install them with: pip install 'cnn-lab[onnx]'.",
        ) from None
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=True,
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes=({0: batch},),
            # One self-contained file (up to ONNX's 2 GiB limit, far above these nets).
            external_data=False,
        )

    def run(saved: Path, x: torch.Tensor) -> torch.Tensor:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError(
                "The ONNX file was written but cannot be checked: onnxruntime is not installed.",
                hint="Install it with: pip install 'cnn-lab[onnx]'.",
            ) from None
        session = ort.InferenceSession(str(saved), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return torch.from_numpy(session.run(None, {name: x.numpy()})[0])

    return run


EXPORTERS: dict[str, tuple[Writer, str, str]] = {
    "torchscript": (_write_torchscript, ".pt", "torch.jit.load"),
    "torch_export": (_write_torch_export, ".pt2", "torch.export.load"),
    "onnx": (_write_onnx, ".onnx", "onnxruntime"),
}
"""format → (writer, usual suffix, what checks it). One entry per format."""


def export_model(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    path: str | os.PathLike[str],
    fmt: str,
    *,
    seed: int = 0,
) -> ExportResult:
    """Write ``model`` as ``fmt`` to ``path`` and check the file against PyTorch."""
    import torch

    if fmt not in EXPORTERS:
        raise UserError(
            f"There is no export format called {fmt!r}.",
            hint=f"Choose one of: {', '.join(EXPORTERS)}.",
        )
    writer, _, checker = EXPORTERS[fmt]
    target = Path(path)
    if not target.parent.is_dir():
        raise UserError(f"Cannot export to {target}: the folder {target.parent} does not exist.")
    model = model.to("cpu", memory_format=torch.contiguous_format).eval()
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn((2, *input_shape), generator=generator)
    check = torch.randn((CHECK_BATCH, *input_shape), generator=generator)
    temporary = partial_path(target)
    try:
        with torch.no_grad():
            run = writer(model, example, temporary)
            expected = model(check)
            got = run(temporary, check)
        diff = float((got.float() - expected.float()).abs().max())
        if got.shape != expected.shape or not torch.allclose(got, expected, rtol=RTOL, atol=ATOL):
            raise UserError(
                f"The {fmt} export does not reproduce the PyTorch outputs (largest difference "
                f"{diff:.3g}), so it was not saved.",
                hint="Try another format; please report this with the model's spec.",
            )
        os.replace(temporary, target)
    except UserError:
        raise
    except OSError as exc:
        raise UserError(f"Cannot write the export to {target}: {exc.strerror or exc}.") from None
    except Exception as exc:  # the exporters raise many types for unsupported operations
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"This network cannot be exported as {fmt}: {first}",
            hint="Try another format.",
        ) from None
    finally:
        temporary.unlink(missing_ok=True)
    return ExportResult(target, fmt, target.stat().st_size, diff, checker)


def export_run(
    db_path: str | os.PathLike[str], run_id: int, path: str | os.PathLike[str], fmt: str
) -> tuple[ExportResult, TrainedModel]:
    """Rebuild run ``run_id``'s trained network from its saved weights and export it."""
    from cnn_lab.engine.models.trained import load_trained
    from cnn_lab.engine.store import open_store

    with open_store(db_path) as store:
        trained = load_trained(store, run_id)
    shape = trained.shape
    result = export_model(trained.model, (shape.channels, shape.height, shape.width), path, fmt)
    return result, trained
