"""The report formats as a registry, and ``write_report``: one call for every format.

Each format knows its file suffixes and how to write a run and a sweep into an open file.
Files are written under a temporary name beside the target and renamed over it at the end,
so a failure (a full disk, an unknown run, Ctrl-C) never leaves a half-written report, and
a report already there stays until the new one is complete.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.store import RunRepository
from cnn_lab.engine.util.safe_files import partial_path


@dataclass(frozen=True)
class Options:
    images: bool = True
    """Load the dataset for thumbnails (HTML and PDF)."""
    architecture: bool = True
    """Measure the network (loads torch)."""
    storage: str | None = None
    """A sweep's Optuna storage, when it is not the journal beside the database."""


Writer = Callable[[RunRepository, Any, IO[Any], Options], str]
"""Writes one subject (a run id or a sweep reference) into a file; returns a detail."""


@dataclass(frozen=True)
class ReportFormat:
    name: str
    suffixes: tuple[str, ...]
    description: str
    binary: bool
    run: Writer
    sweep: Writer


@dataclass(frozen=True)
class Written:
    path: Path
    bytes: int
    format: str
    subject: str
    detail: str

    def sentence(self) -> str:
        from cnn_lab.engine.util.formatting import format_bytes

        detail = f", {self.detail}" if self.detail else ""
        return (
            f"Wrote the {self.format.upper()} report of {self.subject} to {self.path} "
            f"({format_bytes(self.bytes)}{detail})."
        )


# ----------------------------------------------------------------------------- writers


def _run_html(store: RunRepository, run_id: Any, out: IO[Any], o: Options) -> str:
    from cnn_lab.engine.report.gather import gather_run
    from cnn_lab.engine.report.html import render_run_html

    data = gather_run(store, run_id, images=o.images, architecture=o.architecture)
    out.write(render_run_html(data))
    return ""


def _sweep_html(store: RunRepository, ref: Any, out: IO[Any], o: Options) -> str:
    from cnn_lab.engine.report.html import render_sweep_html
    from cnn_lab.engine.report.sweep import gather_sweep

    data = gather_sweep(store, ref, storage=o.storage)
    out.write(render_sweep_html(data))
    return f"{len(data.trials.rows)} trials"


def _run_pdf(store: RunRepository, run_id: Any, out: IO[Any], o: Options) -> str:
    from cnn_lab.engine.report.gather import gather_run
    from cnn_lab.engine.report.pdf import render_run_pdf

    data = gather_run(store, run_id, images=o.images, architecture=o.architecture)
    pdf = render_run_pdf(data)
    out.write(pdf)
    return _pages(pdf)


def _sweep_pdf(store: RunRepository, ref: Any, out: IO[Any], o: Options) -> str:
    from cnn_lab.engine.report.pdf import render_sweep_pdf
    from cnn_lab.engine.report.sweep import gather_sweep

    pdf = render_sweep_pdf(gather_sweep(store, ref, storage=o.storage))
    out.write(pdf)
    return _pages(pdf)


def _pages(pdf: bytes) -> str:
    count = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))
    return f"{count} pages" if count else ""


def _run_csv(store: RunRepository, run_id: Any, out: IO[Any], o: Options) -> str:
    from cnn_lab.engine.report.export import write_run_csv

    return f"{write_run_csv(store, run_id, out):,} metric rows"


def _sweep_csv(store: RunRepository, ref: Any, out: IO[Any], o: Options) -> str:
    from cnn_lab.engine.report.sweep_export import write_sweep_csv

    return f"{write_sweep_csv(store, ref, out, o.storage):,} trials"


def _run_json(store: RunRepository, run_id: Any, out: IO[Any], o: Options) -> str:
    from cnn_lab.engine.report.export import write_run_json

    return f"{write_run_json(store, run_id, out):,} metric points"


def _sweep_json(store: RunRepository, ref: Any, out: IO[Any], o: Options) -> str:
    from cnn_lab.engine.report.sweep_export import write_sweep_json

    return f"{write_sweep_json(store, ref, out, o.storage):,} trials"


FORMATS: dict[str, ReportFormat] = {
    f.name: f
    for f in (
        ReportFormat(
            "html", (".html", ".htm"), "a self-contained web page", False, _run_html, _sweep_html
        ),
        ReportFormat("pdf", (".pdf",), "a printable document", True, _run_pdf, _sweep_pdf),
        ReportFormat(
            "csv",
            (".csv",),
            "every metric point (a sweep: every trial)",
            False,
            _run_csv,
            _sweep_csv,
        ),
        ReportFormat(
            "json", (".json",), "everything, every point included", False, _run_json, _sweep_json
        ),
    )
}


def format_for(path: str | os.PathLike[str], name: str | None = None) -> ReportFormat:
    """The format called ``name``, else the one the path's suffix names."""
    if name:
        try:
            return FORMATS[name.lower()]
        except KeyError:
            raise UserError(
                f"There is no report format {name!r}; use one of {', '.join(FORMATS)}."
            ) from None
    suffix = Path(path).suffix.lower()
    for fmt in FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt
    raise UserError(
        f"Cannot tell the report format from {os.fspath(path)!r}.",
        hint="End the file name in .html, .pdf, .csv or .json, or give --format "
        f"({', '.join(FORMATS)}).",
    )


@contextlib.contextmanager
def _atomic(target: Path, binary: bool) -> Iterator[IO[Any]]:
    """A file that replaces ``target`` only once it is completely written."""
    temporary = partial_path(target)
    text = {} if binary else {"encoding": "utf-8", "newline": ""}
    try:
        with open(temporary, "wb" if binary else "w", **text) as handle:  # type: ignore[call-overload]
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _check_target(path: Path) -> None:
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name for the report.")
    if not path.parent.is_dir():
        raise UserError(
            f"Cannot write {path}: the folder {path.parent} does not exist.",
            hint="Create it first, or choose another place.",
        )


def write_report(
    store: RunRepository,
    out: str | os.PathLike[str],
    *,
    run_id: int | None = None,
    sweep: str | int | None = None,
    fmt: str | None = None,
    options: Options = Options(),
) -> Written:
    """Write the report of run ``run_id`` or of sweep ``sweep`` (an id or a name) to ``out``."""
    if (run_id is None) == (sweep is None):
        raise UserError("Name either a run or a sweep to report on.")
    path = Path(os.path.abspath(Path(out).expanduser()))
    _check_target(path)
    chosen = format_for(out, fmt)
    if run_id is not None:
        store.get_run(run_id)  # RunNotFound before any file is opened
        writer, subject = chosen.run, f"run {run_id}"
    else:
        from cnn_lab.engine.search.past import find_sweep

        found = find_sweep(store, sweep)  # type: ignore[arg-type]
        writer, subject = chosen.sweep, f"sweep {found['name']}"
    target = run_id if run_id is not None else sweep
    try:
        with _atomic(path, chosen.binary) as handle:
            detail = writer(store, target, handle, options)
    except OSError as exc:
        raise UserError(f"Could not write {path}: {exc.strerror or exc}.") from None
    return Written(path, path.stat().st_size, chosen.name, subject, detail)


__all__ = ["FORMATS", "Options", "ReportFormat", "Written", "format_for", "write_report"]
