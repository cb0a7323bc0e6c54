"""Reports: self-contained, escaped HTML; a PDF of the planned pages; every metric in CSV/JSON.

One real run is trained once for the module, on a CSV dataset whose class label and run
name are ``<script>alert(1)</script>``, then evaluated, so every section of a report has
real content and the hostile label reaches tables, charts, captions and tooltips. Sweeps
are made fast with a trainer that plants its scores and metrics instead of training.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnn_lab.engine.evaluation.evaluate import evaluate_run
from cnn_lab.engine.jobs.job import run_job
from cnn_lab.engine.report import charts, pdf_layout
from cnn_lab.engine.report.data import ChartData, Series
from cnn_lab.engine.report.gather import gather_run
from cnn_lab.engine.report.html import render_run_html
from cnn_lab.engine.report.sweep import gather_sweep
from cnn_lab.engine.search import SearchSpec
from cnn_lab.engine.search.storage import default_storage_path
from cnn_lab.engine.search.study import run_sweep
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import MetricPoint, RunStore, SystemSample
from cnn_lab.engine.store import status as st
from tests.engine.image_folders import write_class_folder
from tests.engine.planted_sweep import StoredEpochTrainer
from tests.engine.test_cli import assert_refused_in_one_line, invoke

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
LABELS = {"red": HOSTILE, "green": "grün ✓", "blue": "blue"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A finished, evaluated run on a CSV dataset with a hostile class label and name."""
    root = tmp_path_factory.mktemp("report-data")
    write_class_folder(root / "images", {"red": 14, "green": 14, "blue": 14}, size=(16, 16))
    rows = ["path,label"] + [
        f"images/{folder}/{image.name},{label}"
        for folder, label in LABELS.items()
        for image in sorted((root / "images" / folder).iterdir())
    ]
    (root / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = RunSpec.from_dict(
        {
            "name": HOSTILE,
            "tags": ["<b>tag</b>"],
            "dataset": {"source": str(root / "labels.csv"), "image_size": 16, "test_fraction": 0.2},
            "architecture": {"preset": "small_cnn", "width": 0.25},
            "train": {"epochs": 2, "batch_size": 16, "device": "cpu"},
        }
    )
    db = tmp_path_factory.mktemp("report-db") / "runs.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_LAB_CACHE", str(root / "cache"))
        record = run_job(spec, db, sample_system=False)
        assert record is not None and record.status == st.COMPLETED, record
        with RunStore.open(db) as store:
            result = evaluate_run(store, record.id, mistakes=3)
            store.update_summary(record.id, {"evaluation": result.to_dict()})
            now = time.time()
            # A diverged point (NaN is stored as NULL) and a few system samples.
            store.add_metrics([MetricPoint(record.id, 99, 2, "val.loss", math.nan, now)])
            store.write_batch(
                record.id,
                [],
                (
                    SystemSample(record.id, now + i, key, value)
                    for i in range(5)
                    for key, value in (("cpu.percent", 50.0 + i), ("ram.used_mb", 900.0 + i))
                ),
            )
    return db, record.id


def _metric_count(db: Path, run_id: int) -> int:
    with RunStore.open(db) as store:
        return int(
            store.sqlite_db.execute(
                "SELECT COUNT(*) FROM metrics WHERE run_id = ?", [run_id]
            ).fetchone()[0]
        )


class _Tags(HTMLParser):
    """Every start tag and its attributes, to check what the page would load or run."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_self_contained(page: str) -> None:
    lowered = page.lower()
    for needle in ("http://", "https://", 'src="//', "<script", "<link", "@import", "url("):
        assert needle not in lowered, needle
    parser = _Tags()
    parser.feed(page)
    names = {tag for tag, _ in parser.tags}
    assert not names & {"script", "iframe", "object", "embed", "link", "base"}
    for tag, attrs in parser.tags:
        if "src" in attrs:
            assert str(attrs["src"]).startswith("data:image/png;base64,"), (tag, attrs)
        assert not any(key.startswith("on") for key in attrs), (tag, attrs)  # no handlers
        href = attrs.get("href")
        assert href is None or href.startswith("#"), href


# ------------------------------------------------------------------------------- HTML


def test_the_html_report_is_self_contained_and_escapes_every_name(
    trained: tuple[Path, int], tmp_path: Path
) -> None:
    db, run_id = trained
    with RunStore.open(db) as store:  # tags and notes edited in the Runs panel are escaped too
        store.set_note(run_id, "<i>note</i>")
        store.set_tags(run_id, ["<b>tag</b>", "edited"])
    out = tmp_path / "run.html"
    result = invoke(["report", str(run_id), "--db", str(db), "--out", str(out)])
    assert result.code == 0, result.err
    assert result.out.startswith(f"Wrote the HTML report of run {run_id} to {out} (")
    assert result.out.count("\n") == 1
    page = out.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert f"<h1>Run {run_id}: {ESCAPED}</h1>" in page
    assert page.count(ESCAPED) >= 4  # title, heading, class table, per-class table, ...
    assert "&lt;b&gt;tag&lt;/b&gt;, edited" in page  # the tags
    assert "&lt;i&gt;note&lt;/i&gt;" in page and "<i>note" not in page
    assert "grün ✓" in page
    for section in ("dataset", "architecture", "hyperparameters", "curves", "system"):
        assert f'<section id="{section}">' in page
    assert "bottleneck" in page and "Costliest mistakes" in page
    assert page.count("<svg") >= 5  # curves, system use and the confusion matrix
    assert "train.lr" in page and "Parameters" in page  # hyperparameters, architecture
    assert "data:image/png;base64," in page  # thumbnails embedded
    # The run recorded what trained it, so the report says so instead of guessing.
    import torch

    assert torch.__version__ in page and "not recorded by the run" not in page


def test_a_run_not_yet_evaluated_says_how_to_evaluate_it(
    trained: tuple[Path, int], tmp_path: Path
) -> None:
    db, run_id = trained
    with RunStore.open(db) as store:
        queued = store.create_run(spec_json=store.get_run(run_id).spec_json, spec_hash="h")
        data = gather_run(store, queued, images=False, architecture=False)
    page = render_run_html(data)
    assert_self_contained(page)
    assert f"Not evaluated — run `cnn-lab evaluate {queued}`" in page
    assert "The run logged no metrics." in page
    assert "No system samples were recorded" in page


def test_charts_escape_their_text_and_leave_gaps_at_nan() -> None:
    chart = ChartData(
        HOSTILE,
        "step",
        "loss",
        (Series(HOSTILE, (0.0, 1.0, 2.0, 3.0, 4.0), (1.0, 0.5, math.nan, 0.4, 0.3)),),
    )
    svg = charts.to_svg(charts.line_chart(chart))
    assert "<script" not in svg and ESCAPED in svg
    figure = charts.line_chart(chart)
    assert sum(isinstance(i, charts.Path) for i in figure.items) == 2  # cut at the NaN
    ticks = charts.nice_ticks(0.013, 0.947)
    assert ticks[0] <= 0.013 and ticks[-1] >= 0.947 and len(ticks) <= 8


# -------------------------------------------------------------------------------- PDF


@contextlib.contextmanager
def opened_pdf(pdf: bytes) -> Iterator[list[Any]]:
    """The PDF's pages as pdfium reads them (so the file is a real, parseable PDF)."""
    pdfium = pytest.importorskip("pypdfium2")  # the dev extra has it
    document = pdfium.PdfDocument(pdf)
    pages = [document[i] for i in range(len(document))]
    try:
        yield pages
    finally:
        for page in pages:
            page.close()
        document.close()


def _text(page: Any) -> str:
    textpage = page.get_textpage()
    try:
        return str(textpage.get_text_range())
    finally:
        textpage.close()


def _assert_not_blank(page: Any) -> None:
    pixels = np.asarray(page.render(scale=0.6).to_pil().convert("L"))
    assert (pixels < 200).mean() > 0.002  # some ink on the page, not a white sheet


def test_the_pdf_has_the_pages_its_structure_predicts_and_each_renders(
    trained: tuple[Path, int], tmp_path: Path
) -> None:
    db, run_id = trained
    out = tmp_path / "run.pdf"
    result = invoke(["report", str(run_id), "--db", str(db), "--out", str(out)])
    assert result.code == 0, result.err
    with RunStore.open(db) as store:
        data = gather_run(store, run_id)
    rows = pdf_layout.ROWS_PER_PAGE
    expected = {
        "Overview": 1,
        "Dataset": 1,
        "Architecture": 1,
        # One header row, then one row per setting.
        "Hyperparameters": math.ceil((len(data.hyperparameters.rows) + 1) / rows),
        "Training curves": math.ceil(len(data.curves) / pdf_layout.CHARTS_PER_PAGE),
        "System use": 1,  # two charts and a small table
        "Bottleneck": 1,
        "Evaluation": 1,  # 3 classes, at most 3 mistakes
        "Environment": 1,
    }
    assert len(data.curves) >= 4 and len(data.system) == 2
    sections = [name for name, n in expected.items() for _ in range(n)]
    assert f", {len(sections)} pages)." in result.out
    with opened_pdf(out.read_bytes()) as pages:
        assert len(pages) == len(sections)
        texts = [_text(page) for page in pages]
        for page, text, section in zip(pages, texts, sections, strict=True):
            assert text.startswith(section), (section, text[:80])
            _assert_not_blank(page)
    assert HOSTILE in texts[0]  # a PDF shows the name as typed: nothing there runs


def test_a_long_table_continues_on_new_pages_with_its_header() -> None:
    from cnn_lab.engine.report.data import Table

    table = Table(("Setting", "Value"), tuple((f"p{i}", str(i)) for i in range(100)))
    pages = pdf_layout.paginate([pdf_layout.Section("Long", tuple(pdf_layout.table(table)))])
    assert len(pages) == math.ceil(101 / pdf_layout.ROWS_PER_PAGE)
    assert pages[0].continued is None
    assert all(page.continued is table for page in pages[1:])
    assert sum(isinstance(u, pdf_layout.TableRow) for p in pages for u in p.units) == 100


# ----------------------------------------------------------------------- CSV and JSON


def test_the_csv_export_holds_every_metric_row(trained: tuple[Path, int], tmp_path: Path) -> None:
    db, run_id = trained
    out = tmp_path / "metrics.csv"
    result = invoke(["report", str(run_id), "--db", str(db), "--out", str(out)])
    assert result.code == 0, result.err
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[0] == ["run_id", "key", "step", "epoch", "value", "time"]
    count = _metric_count(db, run_id)
    assert len(rows) - 1 == count and f"{count:,} metric rows" in result.out
    with RunStore.open(db) as store:
        stored = sorted(
            (key, step)
            for key, step in store.sqlite_db.execute(
                "SELECT key, step FROM metrics WHERE run_id = ?", [run_id]
            )
        )
    assert sorted((r[1], int(r[2])) for r in rows[1:]) == stored
    nan_rows = [r for r in rows[1:] if r[1] == "val.loss" and r[2] == "99"]
    assert nan_rows and nan_rows[0][4] == ""  # NaN is an empty cell, never "nan"


def test_the_json_export_parses_strictly_and_has_every_point(
    trained: tuple[Path, int], tmp_path: Path
) -> None:
    db, run_id = trained
    out = tmp_path / "everything.dat"
    result = invoke(["report", str(run_id), "--db", str(db), "--out", str(out), "--format", "json"])
    assert result.code == 0, result.err

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    document = json.loads(out.read_text(encoding="utf-8"), parse_constant=refuse)
    assert document["run"]["id"] == run_id and document["spec"]["name"] == HOSTILE
    assert document["run"]["summary"]["evaluation"]["images"] > 0
    metrics = document["metrics"]
    assert sum(len(points) for points in metrics.values()) == _metric_count(db, run_id)
    assert metrics["val.loss"][-1][:3] == [99, 2, None]
    assert len(document["system_samples"]["cpu.percent"]) == 5
    assert document["metric_columns"] == ["step", "epoch", "value", "time"]


# ------------------------------------------------------------------------------ sweeps


@pytest.fixture
def swept(db_path: Path) -> tuple[Path, SearchSpec]:
    search = SearchSpec.from_dict(
        {
            "name": HOSTILE,
            "base": {
                "dataset": {"source": "sample:shapes", "limit": 100},
                "train": {"epochs": 1, "device": "cpu"},
            },
            "params": [
                {"path": "train.lr", "range": {"low": 0.001, "high": 0.1, "log": True}},
                {"path": "train.batch_size", "values": [16, 32]},
            ],
            "strategy": "random",
            "trials": 6,
        }
    )
    trainer = StoredEpochTrainer(lambda s: 0.5 + s.train.lr * 3 + s.train.batch_size / 1000)
    result = run_sweep(search, db_path, trainer=trainer, sample_system=False)
    assert result.trials_done == 6
    return db_path, search


def test_a_sweep_report_shows_trials_parallel_coordinates_and_importance(
    swept: tuple[Path, SearchSpec], tmp_path: Path
) -> None:
    db, _ = swept
    out = tmp_path / "sweep.html"
    result = invoke(["report", "--sweep", HOSTILE, "--db", str(db), "--out", str(out)])
    assert result.code == 0, result.err
    assert "6 trials" in result.out
    page = out.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert f"<h1>Sweep {ESCAPED}</h1>" in page
    assert "Trials across the searched parameters" in page  # the parallel coordinates
    assert "Share of the value&#x27;s variance" in page  # importance, drawn
    with RunStore.open(db) as store:
        data = gather_sweep(store, HOSTILE)
    assert len(data.trials.rows) == 6
    assert {a.label for a in data.axes} == {"train.lr", "train.batch_size", "val.accuracy"}
    assert {name for name, _ in data.importance} == {"train.lr", "train.batch_size"}
    assert math.isclose(sum(share for _, share in data.importance), 1.0, rel_tol=1e-6)
    values = [float(row[4]) for row in data.trials.rows]
    assert max(values) == pytest.approx(max(v for v in data.colour if v is not None), rel=1e-3)

    by_id = invoke(["report", "--sweep", str(data.experiment_id), "--db", str(db),
                    "--out", str(tmp_path / "trials.csv")])  # fmt: skip
    assert by_id.code == 0, by_id.err
    trials = list(csv.DictReader((tmp_path / "trials.csv").open(encoding="utf-8")))
    assert len(trials) == 6 and {t["state"] for t in trials} == {"complete"}
    assert {t["train.batch_size"] for t in trials} <= {"16", "32"}

    exported = invoke(["report", "--sweep", HOSTILE, "--db", str(db),
                       "--out", str(tmp_path / "sweep.json")])  # fmt: skip
    assert exported.code == 0, exported.err
    document = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    assert len(document["trials"]) == 6 and len(document["runs"]) == 6
    assert all(len(r["metrics"]["val.accuracy"]) == 1 for r in document["runs"])


def test_a_sweep_pdf_has_its_planned_pages(swept: tuple[Path, SearchSpec], tmp_path: Path) -> None:
    db, _ = swept
    out = tmp_path / "sweep.pdf"
    result = invoke(["report", "--sweep", HOSTILE, "--db", str(db), "--out", str(out)])
    assert result.code == 0, result.err
    with RunStore.open(db) as store:
        data = gather_sweep(store, HOSTILE)
    base_rows = len(data.space.rows) + 1 + 1 + len(data.base.rows) + 1  # two tables, a heading
    expected = 1 + 1 + 1 + 1 + math.ceil(base_rows / pdf_layout.ROWS_PER_PAGE) + 1
    with opened_pdf(out.read_bytes()) as pages:
        assert len(pages) == expected
        for page in pages:
            _assert_not_blank(page)


def test_a_sweep_without_its_study_is_rebuilt_from_its_runs(
    swept: tuple[Path, SearchSpec],
) -> None:
    db, _ = swept
    default_storage_path(db).rename(db.with_name("elsewhere.journal"))
    with RunStore.open(db) as store:
        data = gather_sweep(store, HOSTILE)
    assert len(data.trials.rows) == 6
    assert data.notes and "rebuilt from its recorded runs" in data.notes[0]
    assert not data.importance and "needs the sweep's study" in data.importance_note
    assert all(row[1] == "complete" for row in data.trials.rows)


# ------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        (["999", "--out", "{tmp}/r.html"], "There is no run 999"),
        (["{run}", "--out", "{tmp}/missing/r.html"], "does not exist"),
        (["{run}", "--out", "{tmp}"], "is a folder"),
        (["{run}", "--out", "{tmp}/r.docx"], "Cannot tell the report format"),
        (["{run}", "--sweep", "x", "--out", "{tmp}/r.html"], "either a RUN_ID or --sweep"),
        (["--sweep", "nope", "--out", "{tmp}/r.html"], "There is no sweep 'nope'"),
    ],
)
def test_report_refusals_are_one_line_and_leave_no_file(
    trained: tuple[Path, int], tmp_path: Path, argv: list[str], phrase: str
) -> None:
    db, run_id = trained
    filled = [a.format(tmp=tmp_path, run=run_id) for a in argv]
    result = invoke(["report", *filled, "--db", str(db)])
    assert_refused_in_one_line(result)
    assert phrase in result.err
    assert list(tmp_path.iterdir()) == []
