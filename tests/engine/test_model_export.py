"""A trained run's weights are saved, rebuilt without pickle, and exported with a check."""

from __future__ import annotations

import builtins
import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.jobs.job import run_job
from cnn_lab.engine.models.export import export_model
from cnn_lab.engine.models.trained import load_trained
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st
from cnn_lab.engine.store.artifact_kinds import WEIGHTS as WEIGHTS_KIND
from tests.engine.test_cli import assert_refused_in_one_line, invoke

CUSTOM = {
    "preset": "custom",
    "layers": [
        {"kind": "conv2d", "params": {"out_channels": 8}},
        {"kind": "batchnorm"},
        {"kind": "relu"},
        {"kind": "basic_block", "params": {"out_channels": 16, "stride": 2}},
        {"kind": "squeeze_excite"},
        {"kind": "global_avg_pool"},
        {"kind": "dropout", "params": {"p": 0.1}},
        {"kind": "linear"},
    ],
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    db = tmp_path_factory.mktemp("export") / "runs.sqlite"
    spec = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 120, "image_size": 16},
            "architecture": CUSTOM,
            "train": {"epochs": 1, "batch_size": 32, "device": "cpu"},
        }
    )
    record = run_job(spec, db, sample_system=False)
    assert record.status == st.COMPLETED, record.reason
    return db, record.id


def test_a_finished_run_records_its_weights_and_they_load_back(
    trained_run: tuple[Path, int],
) -> None:
    db, run_id = trained_run
    with RunStore.open(db) as store:
        artifacts = [a for a in store.artifacts(run_id) if a["kind"] == WEIGHTS_KIND]
        trained = load_trained(store, run_id)
    assert len(artifacts) == 1 and artifacts[0]["bytes"] > 1000
    assert len(artifacts[0]["sha256"]) == 64
    assert not list(Path(artifacts[0]["path"]).parent.glob(".*partial"))
    assert trained.shape.height == 16 and trained.shape.classes == len(trained.classes)
    assert not trained.model.training
    with torch.no_grad():
        logits = trained.model(torch.rand(4, 3, 16, 16))
    assert logits.shape == (4, trained.shape.classes)


@pytest.mark.parametrize("fmt", ["torchscript", "torch_export", "onnx"])
def test_export_from_the_cli_matches_pytorch(
    trained_run: tuple[Path, int], tmp_path: Path, fmt: str
) -> None:
    pytest.importorskip("onnxruntime") if fmt == "onnx" else None
    db, run_id = trained_run
    out = tmp_path / f"model.{fmt}"
    result = invoke(
        [
            "model",
            "export",
            str(run_id),
            "--format",
            fmt,
            "--out",
            str(out),
            "--db",
            str(db),
            "--json",
        ]
    )
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["max_abs_diff"] < 1e-4
    assert out.is_file() and data["bytes"] == out.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no partial file


def test_an_export_that_differs_from_pytorch_is_not_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnn_lab.engine.models import export

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    real_writer = export.EXPORTERS["torchscript"][0]

    def wrong(model: Any, example: Any, path: Path) -> Any:
        run = real_writer(model, example, path)
        return lambda saved, x: run(saved, x) + 1.0

    monkeypatch.setitem(export.EXPORTERS, "torchscript", (wrong, ".pt", "a broken check"))
    with pytest.raises(UserError, match="does not reproduce the PyTorch outputs"):
        export_model(model, (3, 2, 2), tmp_path / "m.pt", "torchscript")
    assert list(tmp_path.iterdir()) == []


def test_onnx_without_its_tools_asks_for_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_onnx(name: str, *args: Any, **kwargs: Any) -> Any:
        if name in ("onnx", "onnxscript"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    with pytest.raises(UserError) as caught:
        export_model(model, (3, 2, 2), tmp_path / "m.onnx", "onnx")
    assert "pip install 'cnn-lab[onnx]'" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_export_refusals(trained_run: tuple[Path, int], tmp_path: Path, db_path: Path) -> None:
    db, run_id = trained_run
    missing_folder = tmp_path / "nope" / "m.pt"
    assert_refused_in_one_line(
        invoke(["model", "export", str(run_id), "--out", str(missing_folder), "--db", str(db)])
    )
    with RunStore.open(db_path) as store:
        queued = store.create_run(spec_json=RunSpec().to_json(), spec_hash="x")
    result = invoke(["model", "export", str(queued), "--out", "m.pt", "--db", str(db_path)])
    assert_refused_in_one_line(result)
    assert "has no saved weights" in result.err


def test_a_corrupt_weights_file_is_a_sentence(trained_run: tuple[Path, int]) -> None:
    db, run_id = trained_run
    with RunStore.open(db) as store:
        path = Path(store.artifacts(run_id)[-1]["path"])
        original = path.read_bytes()
        try:
            path.write_bytes(original[: len(original) // 2])
            with pytest.raises(UserError, match="is corrupt"):
                load_trained(store, run_id)
        finally:
            path.write_bytes(original)


def _architecture(layers: list[dict[str, Any]]) -> Any:
    return RunSpec.from_dict({"architecture": {"preset": "custom", "layers": layers}}).architecture


WIDER = [dict(CUSTOM["layers"][0], params={"out_channels": 12}), *CUSTOM["layers"][1:]]
OTHER = [
    {"kind": "conv2d", "params": {"out_channels": 4}},
    {"kind": "relu"},
    {"kind": "global_avg_pool"},
    {"kind": "linear"},
]


@pytest.mark.parametrize(
    ("layers", "said"),
    [
        # the first conv is 12 wide in the file: its weight is the first tensor that differs
        (WIDER, r"layer \S+ has weight 12×3×3×3 in the file but 8×3×3×3 in the network"),
        # another network altogether: names the network has that the file lacks
        (OTHER, r"the network's \S+ is not in the file|layer \S+ has \S+ \S+ in the file but"),
    ],
    ids=["wrong-shape", "other-architecture"],
)
def test_a_weights_file_that_does_not_fit_its_network_is_a_sentence(
    trained_run: tuple[Path, int], layers: list[dict[str, Any]], said: str
) -> None:
    from cnn_lab.engine.models.registry import build_model
    from cnn_lab.engine.models.trained import save_weights

    db, run_id = trained_run
    with RunStore.open(db) as store:
        trained = load_trained(store, run_id)
        path = Path(store.artifacts(run_id)[-1]["path"])
    original = path.read_bytes()
    try:
        save_weights(
            build_model(_architecture(layers), trained.shape), path, trained.shape, trained.classes
        )
        with RunStore.open(db) as store, pytest.raises(UserError) as raised:
            load_trained(store, run_id)
        message = str(raised.value)
        assert f"Run {run_id}'s weights file {path.name} does not fit this network: " in message
        assert re.search(said, message), message
        assert "state_dict" not in message and "\n" not in message
        assert raised.value.hint and "train the run again" in raised.value.hint
        # the command a person runs says the same, in one line, without a traceback
        result = invoke(["model", "export", str(run_id), "--out", "m.pt", "--db", str(db)])
        assert_refused_in_one_line(result)
        assert "does not fit this network" in result.err
    finally:
        path.write_bytes(original)
