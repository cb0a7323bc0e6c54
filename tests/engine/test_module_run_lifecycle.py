"""A run of the person's own module lives on after its file is gone: evaluate, predict,
export, report and resume all rebuild the recorded network, never the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_lab.engine.evaluation.evaluate import evaluate_run
from cnn_lab.engine.evaluation.predict import predict_files
from cnn_lab.engine.jobs.job import run_job
from cnn_lab.engine.models.export import export_run
from cnn_lab.engine.models.module_source import read_module_source
from cnn_lab.engine.report.formats import write_report
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st

NET = """\
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes, in_channels=3, width=6):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.body(x).mean((2, 3)))
"""


@pytest.fixture(scope="module")
def module_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, Path]:
    root = tmp_path_factory.mktemp("module-run")
    source_file = root / "tiny_net.py"
    source_file.write_text(NET)
    module = read_module_source(source_file, "TinyNet", {"width": 5})
    spec = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 120, "image_size": 16},
            "architecture": {"preset": "module", "module": module.model_dump()},
            "train": {"epochs": 2, "max_steps": 3, "batch_size": 16, "device": "cpu"},
        }
    )
    db = root / "runs.sqlite"
    record = run_job(spec, db, sample_system=False)
    assert record is not None and record.status == st.COMPLETED, record and record.reason
    source_file.unlink()  # from here on, only what the run recorded can build the network
    return db, record.id, root


def test_the_run_is_named_by_its_class_and_file(module_run: tuple[Path, int, Path]) -> None:
    db, run_id, _ = module_run
    with RunStore.open(db) as store:
        record = store.get_run(run_id)
    assert "TinyNet" in record.model and "tiny_net.py" in record.model


def test_evaluate_predict_export_and_report_need_no_file(
    module_run: tuple[Path, int, Path], tmp_path: Path
) -> None:
    db, run_id, _ = module_run
    with RunStore.open(db) as store:
        scored = evaluate_run(store, run_id, mistakes=2)
    assert scored.images > 0 and scored.loss > 0 and scored.scores is not None

    image = tmp_path / "new.png"
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(image)
    predicted = predict_files(db, run_id, [image], top=2)
    [prediction] = predicted.predictions
    assert prediction.error == "" and len(prediction.top) == 2

    exported, _ = export_run(db, run_id, tmp_path / "tiny.ts", "torchscript")
    assert exported.path.exists() and exported.max_abs_diff < 1e-4

    with RunStore.open(db) as store:
        written = write_report(store, tmp_path / "report.html", run_id=run_id)
    html = Path(written.path).read_text()
    assert "TinyNet" in html


def test_resume_rebuilds_the_recorded_network(module_run: tuple[Path, int, Path]) -> None:
    db, run_id, _ = module_run
    with RunStore.open(db) as store:
        spec = RunSpec.from_json(store.get_run(run_id).spec_json)
    more = spec.model_copy(update={"train": spec.train.model_copy(update={"max_steps": 6})})
    with RunStore.open(db) as store:
        store.update_spec(run_id, more.to_json(), more.spec_hash())
        store.finish_run(run_id, st.STOPPED, reason="Stopped by request (test).")
    record = run_job(more, db, run_id, sample_system=False, resume=True)
    assert record is not None and record.status == st.COMPLETED, record.reason
