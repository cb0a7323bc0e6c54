"""Evaluation: scores that match a hand computation, and a real run scored on its test split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnn_lab.engine.evaluation.evaluate import evaluate_run
from cnn_lab.engine.evaluation.scores import score
from cnn_lab.engine.jobs.job import run_job
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.store import RunStore
from cnn_lab.engine.store import status as st
from tests.engine.test_cli import invoke


def test_scores_match_a_hand_computation() -> None:
    # true:      a a a b b c      predicted: a b a b b a
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 0, 1, 1, 0])
    s = score(labels, predicted, ["a", "b", "c"])
    assert s.confusion == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert s.accuracy == pytest.approx(4 / 6)
    a, b, c = s.per_class
    # a: predicted 3 times, right twice; 3 images, 2 found.
    assert (a.precision, a.recall, a.support) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 3)
    assert a.f1 == pytest.approx(2 / 3)
    # b: predicted 3 times, right twice; 2 images, both found.
    assert (b.precision, b.recall) == (pytest.approx(2 / 3), 1.0)
    assert b.f1 == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    # c: never predicted, its one image missed: 0, not NaN.
    assert (c.precision, c.recall, c.f1, c.support) == (0.0, 0.0, 0.0, 1)
    assert s.macro_f1 == pytest.approx((a.f1 + b.f1 + 0) / 3)
    assert s.weighted_f1 == pytest.approx((3 * a.f1 + 2 * b.f1) / 6)


@pytest.fixture(scope="module")
def tested_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    db = tmp_path_factory.mktemp("evaluate") / "runs.sqlite"
    spec = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 300, "test_fraction": 0.2},
            "architecture": {"preset": "small_cnn", "width": 0.5},
            "train": {"epochs": 2, "batch_size": 32, "device": "cpu"},
        }
    )
    record = run_job(spec, db, sample_system=False)
    assert record.status == st.COMPLETED, record.reason
    return db, record.id


def test_a_run_is_scored_on_its_test_split_as_training_scored_it(
    tested_run: tuple[Path, int],
) -> None:
    db, run_id = tested_run
    result = invoke(["evaluate", str(run_id), "--db", str(db), "--json", "--mistakes", "5"])
    assert result.code == 0, result.err
    data = json.loads(result.out)
    with RunStore.open(db) as store:
        record = store.get_run(run_id)
    assert data["split"] == "test" and data["images"] == 60 and data["note"] == ""
    assert data["accuracy"] == pytest.approx(record.summary["test_accuracy"], abs=1e-6)
    assert data["loss"] == pytest.approx(record.summary["test_loss"], rel=1e-4)
    confusion = np.array(data["confusion"])
    assert confusion.sum() == 60 and np.trace(confusion) / 60 == pytest.approx(data["accuracy"])
    assert [c["support"] for c in data["per_class"]] == confusion.sum(axis=1).tolist()
    mistakes = data["mistakes"]
    assert len(mistakes) == min(5, 60 - int(np.trace(confusion)))
    assert all(m["true"] != m["predicted"] for m in mistakes)
    assert [m["loss"] for m in mistakes] == sorted((m["loss"] for m in mistakes), reverse=True)
    assert record.summary["evaluation"]["accuracy"] == data["accuracy"]  # kept for reports

    text = invoke(["evaluate", str(run_id), "--db", str(db), "--split", "val"])
    assert text.code == 0 and text.out.startswith(f"Run {run_id} on its val split (60 images)")
    assert "precision  recall" in text.out


def test_evaluate_refuses_what_it_cannot_score(
    tested_run: tuple[Path, int], tmp_path: Path
) -> None:
    db, run_id = tested_run
    missing = invoke(["evaluate", "999", "--db", str(db)])
    assert missing.code == 2 and "There is no run 999" in missing.err
    nodb = invoke(["evaluate", "1", "--db", str(tmp_path / "none.sqlite")])
    assert nodb.code == 2 and "There is no run database" in nodb.err
    with RunStore.open(db) as store:
        queued = store.create_run(spec_json=store.get_run(run_id).spec_json, spec_hash="h")
        no_test = evaluate_run(store, run_id, split="val")
    assert no_test.split == "val"
    unweighted = invoke(["evaluate", str(queued), "--db", str(db)])
    assert unweighted.code == 2 and "has no saved weights" in unweighted.err


def test_predict_gives_the_test_images_the_answers_evaluation_gave(
    tested_run: tuple[Path, int], tmp_path: Path
) -> None:
    from PIL import Image

    from cnn_lab.engine.data.prepare import prepare_dataset

    db, run_id = tested_run
    with RunStore.open(db) as store:
        spec = RunSpec.from_json(store.get_run(run_id).spec_json)
        accuracy = evaluate_run(store, run_id).scores.accuracy
    prepared = prepare_dataset(spec.dataset)
    test = prepared.split(spec.dataset).test
    folder = tmp_path / "images"
    truth = {}
    for i in test:  # the test images, as lossless files in nested folders
        path = folder / prepared.classes[prepared.labels[i]] / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(prepared.images[i]).save(path)
        truth[str(path)] = prepared.classes[prepared.labels[i]]
    (folder / "broken.png").write_bytes(b"not an image")
    out_csv = tmp_path / "predictions.csv"
    result = invoke(
        ["predict", str(run_id), str(folder), "--db", str(db), "--json", "--top", "3",
         "--csv", str(out_csv)]
    )  # fmt: skip
    assert result.code == 0, result.err
    predictions = json.loads(result.out)["predictions"]
    assert len(predictions) == 61
    broken = [p for p in predictions if p["image"].endswith("broken.png")]
    assert broken[0]["top"] == [] and broken[0]["error"]
    scored = [p for p in predictions if p["top"]]
    assert all(len(p["top"]) == 3 for p in scored)
    assert all(p["top"][0]["probability"] >= p["top"][1]["probability"] for p in scored)
    right = sum(p["top"][0]["class"] == truth[p["image"]] for p in scored)
    assert right / 60 == pytest.approx(accuracy)  # the same answers as evaluation
    rows = out_csv.read_text(encoding="utf-8").splitlines()
    assert (
        rows[0] == "image,class_1,probability_1,class_2,probability_2,class_3,probability_3,error"
    )
    assert len(rows) == 62
    text = invoke(["predict", str(run_id), str(folder / "broken.png"), "--db", str(db)])
    assert text.code == 0 and text.out.startswith(str(folder / "broken.png") + ": ")
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = invoke(["predict", str(run_id), str(empty), "--db", str(db)])
    assert refused.code == 2 and "No images to predict" in refused.err
