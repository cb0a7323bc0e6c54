"""The engine's evaluate-and-store rule, batch prediction and a stored evaluation's pictures:
the functions that ``cnn-lab evaluate``/``predict`` and the Evaluate and Predict panels share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_lab.engine.errors import Cancelled, UserError
from cnn_lab.engine.evaluation.evaluate import evaluate_and_store
from cnn_lab.engine.evaluation.mistake_images import stored_mistake_images
from cnn_lab.engine.evaluation.predict import predict_files
from cnn_lab.engine.store import RunStore
from tests.app.trained_run import train_tiny_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    db = tmp_path_factory.mktemp("evaluate-store") / "runs.sqlite"
    return db, train_tiny_run(db)


def test_an_evaluation_is_kept_in_the_runs_summary_and_its_pictures_found(
    tiny_run: tuple[Path, int],
) -> None:
    db, run_id = tiny_run
    stages: list[str] = []
    with RunStore.open(db) as store:
        result = evaluate_and_store(
            store, run_id, mistakes=4, progress=lambda stage, *_: stages.append(stage)
        )
        record = store.get_run(run_id)
    assert "evaluating" in stages
    assert record.summary["evaluation"] == result.to_dict()
    assert result.split == "test" and result.images == 30
    images = stored_mistake_images(record, record.summary["evaluation"])
    assert len(images) == len(result.mistakes) <= 4
    assert all(image is not None and image.shape[:2] == (16, 16) for image in images)


def test_a_stopped_evaluation_stores_nothing(tiny_run: tuple[Path, int]) -> None:
    db, run_id = tiny_run
    with RunStore.open(db) as store:
        store.update_summary(run_id, {"evaluation": None})
        with pytest.raises(Cancelled):
            evaluate_and_store(store, run_id, should_stop=lambda: True)
        assert store.get_run(run_id).summary.get("evaluation") is None


def test_files_are_predicted_one_by_one_with_every_class_or_the_top(
    tiny_run: tuple[Path, int], tmp_path: Path
) -> None:
    db, run_id = tiny_run
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    seen: list[tuple[str, int, int]] = []
    first = predict_files(db, run_id, [folder], progress=lambda *a: seen.append(a))
    classes = len(first.predictor.trained.classes)
    assert [Path(p.image).name for p in first.predictions] == [
        "0.png",
        "1.png",
        "2.png",
        "broken.png",
    ]
    assert all(len(p.top) == classes for p in first.predictions[:3])
    assert first.predictions[3].error and not first.predictions[3].top
    assert seen[0] == ("Loading the run", 0, 0) and seen[-1] == ("Predicting", 4, 4)
    # A Predictor passed back is used again, not rebuilt; ``top`` cuts the ranking.
    seen.clear()
    again = predict_files(
        db,
        run_id,
        [folder / "0.png"],
        predictor=first.predictor,
        top=1,
        progress=lambda *a: seen.append(a),
    )
    assert again.predictor is first.predictor and seen == [("Predicting", 1, 1)]
    assert again.predictions[0].top == first.predictions[0].top[:1]


def test_no_images_and_a_stop_are_said_not_crashed(
    tiny_run: tuple[Path, int], tmp_path: Path
) -> None:
    db, run_id = tiny_run
    with pytest.raises(UserError, match="No images to predict"):
        predict_files(db, run_id, [tmp_path])
    image = tmp_path / "one.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    with pytest.raises(Cancelled):
        predict_files(db, run_id, [image], should_stop=lambda: True)
