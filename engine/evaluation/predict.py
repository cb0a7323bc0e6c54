"""Predict with a trained run: the top classes of new images, preprocessed as training was.

An image goes through the same steps as the run's dataset: decoded (EXIF orientation,
transparency flattened, 16-bit rescaled), resized by the run's policy to its input size and
channels, scaled by the mean and standard deviation of the run's own training split, then
through the network with the run's precision and test-time flip. So a file that is one of
the training set's images gets exactly the prediction evaluation gave it.

The normalisation is recomputed from the run's dataset (its decoded cache makes that quick),
so predicting needs the data the run trained on. A file that cannot be read is a row with
its reason, never the end of the batch.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnn_lab.engine.errors import Cancelled, UserError
from cnn_lab.engine.models.trained import TrainedModel
from cnn_lab.engine.store import RunRepository, open_store

DEFAULT_TOP = 5


@dataclass(frozen=True)
class Prediction:
    image: str
    top: list[tuple[str, float]] = field(default_factory=list)
    """(class, probability), most likely first."""
    error: str = ""
    """Why the image could not be classified (then ``top`` is empty)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["top"] = [{"class": name, "probability": p} for name, p in self.top]
        return data


def expand(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given; a folder becomes its image files (recursively, sorted)."""
    from cnn_lab.engine.data.decode import IMAGE_SUFFIXES

    found: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            found += sorted(
                p for p in given.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            found.append(given)
    return found


class Predictor:
    """A run's network with its preprocessing, ready for files."""

    def __init__(self, trained: TrainedModel, mean: np.ndarray, std: np.ndarray, device: str):
        from cnn_lab.engine.train.devices import resolve_device

        self.trained = trained
        self.device = resolve_device(device)
        self.model = trained.model.to(self.device).eval()
        shape = (1, -1, 1, 1)
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=self.device).view(shape)
        self.std = torch.as_tensor(std, dtype=torch.float32, device=self.device).view(shape)

    @classmethod
    def from_run(cls, store: RunRepository, run_id: int, device: str = "cpu") -> Predictor:
        from cnn_lab.engine.data.auto_preprocess import as_trained
        from cnn_lab.engine.data.normalization import choose_normalization
        from cnn_lab.engine.data.prepare import prepare_dataset
        from cnn_lab.engine.models.published_weights import expected_preprocessing
        from cnn_lab.engine.models.trained import load_trained

        trained = load_trained(store, run_id)
        shape = trained.shape
        # The size and channels the weights were trained at, never a fresh auto choice.
        dataset = as_trained(trained.spec.dataset, (shape.channels, shape.height, shape.width))
        try:
            prepared = prepare_dataset(dataset)
        except UserError as exc:
            raise UserError(
                f"Run {run_id}'s training data is needed to scale new images as training did, "
                f"and it could not be read: {exc.message}",
                hint="Put the dataset back where the run found it.",
            ) from None
        splits = prepared.split(dataset)
        # The mean and std training chose (published weights' or the images' own).
        expected = expected_preprocessing(trained.spec.architecture)
        chosen = choose_normalization(dataset, expected, prepared.images, splits.train)
        return cls(trained, chosen.mean, chosen.std, device)

    def pixels(self, path: Path) -> np.ndarray:
        """The file as the run's dataset would hold it: uint8 H×W×C."""
        from cnn_lab.engine.data.decode import decode_file
        from cnn_lab.engine.data.resize import resize_image

        shape, dataset = self.trained.shape, self.trained.spec.dataset
        # Decoded at reduced size as the import's cache does it, so a photo gets the pixels
        # the run trained on (draft-mode JPEGs differ from a full decode by a few levels).
        decoded = decode_file(path, target=(shape.width, shape.height))
        return resize_image(
            decoded.image,
            shape.height,
            shape.width,
            dataset.resize,
            shape.channels,
            extent=decoded.extent,
        )

    def predict(self, paths: Sequence[Path], top: int = DEFAULT_TOP) -> list[Prediction]:
        """Each file's ``top`` classes, in the order given."""
        from cnn_lab.engine.data.decode import ImageSkipped
        from cnn_lab.engine.train.loop import eval_logits
        from cnn_lab.engine.train.options import autocast

        classes = self.trained.classes
        results = []
        for path in paths:
            try:
                pixels = self.pixels(path)
            except ImageSkipped as exc:
                results.append(Prediction(str(path), error=exc.reason))
                continue
            x = torch.tensor(pixels, device=self.device).permute(2, 0, 1).unsqueeze(0)
            x = (x.float() / 255.0 - self.mean) / self.std
            with torch.inference_mode(), autocast(self.trained.spec.train, self.device):
                probs = eval_logits(self.model, x, self.trained.spec.train).softmax(1)[0]
            values, indices = probs.float().topk(min(top, len(classes)))
            results.append(
                Prediction(
                    str(path),
                    [(classes[i], float(v)) for v, i in zip(values, indices.tolist(), strict=True)],
                )
            )
        return results


@dataclass(frozen=True)
class PredictedFiles:
    """What ``predict_files`` made: the predictions, and the Predictor to reuse next time."""

    predictor: Predictor
    predictions: list[Prediction]


def predict_files(
    db_path: str | os.PathLike[str],
    run_id: int,
    paths: Iterable[str | os.PathLike[str]],
    *,
    predictor: Predictor | None = None,
    top: int | None = None,
    device: str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[str, int, int], None] = lambda *_: None,
) -> PredictedFiles:
    """Each image in ``paths`` (a folder: its images) by run ``run_id``, ``top`` classes each.

    ``top`` None keeps every class ranked, so a caller can change how many it shows without
    predicting again. Building a Predictor costs a dataset read and the weights, so a caller
    predicting batch after batch passes back the one it got (``predictor``). Files go one
    by one, so a stop is heard between them.
    """
    files = expand(paths)
    if not files:
        raise UserError("No images to predict: the folders given hold no image files.")
    if predictor is None:
        progress("Loading the run", 0, 0)
        with open_store(db_path) as store:
            predictor = Predictor.from_run(store, run_id, device=device)
    k = top if top is not None else len(predictor.trained.classes)
    predictions: list[Prediction] = []
    for done, path in enumerate(files):
        if should_stop():
            raise Cancelled("The prediction was stopped.")
        predictions += predictor.predict([path], top=k)
        progress("Predicting", done + 1, len(files))
    return PredictedFiles(predictor, predictions)


def write_csv(predictions: Sequence[Prediction], out: str | os.PathLike[str]) -> None:
    """One row per image: the image, then class and probability pairs, then any error."""
    width = max((len(p.top) for p in predictions), default=0)
    header = ["image"]
    for rank in range(1, width + 1):
        header += [f"class_{rank}", f"probability_{rank}"]
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*header, "error"])
        for p in predictions:
            cells: list[Any] = [p.image]
            for name, probability in p.top:
                cells += [name, f"{probability:.6f}"]
            cells += [""] * (len(header) - len(cells))
            writer.writerow([*cells, p.error])


__all__ = [
    "DEFAULT_TOP",
    "PredictedFiles",
    "Prediction",
    "Predictor",
    "expand",
    "predict_files",
    "write_csv",
]
