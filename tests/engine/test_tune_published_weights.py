"""The tuners with published weights: they download them first (as a stage of their progress)
and probe the network as training builds it: started from the weights, images sized and
normalised as the weights expect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cnn_lab.engine.errors import Cancelled
from cnn_lab.engine.models import published_weights as pw
from cnn_lab.engine.models.hub_download import DOWNLOADING, MIRROR_ENV
from cnn_lab.engine.specs import RunSpec
from cnn_lab.engine.tune.lr_finder import lr_range_test
from cnn_lab.engine.tune.probe import Probe, prepare
from tests.engine.test_published_weights import TINY, published  # noqa: F401 (a fixture)
from tests.local_http import FileServer

IMAGENET_MEAN = (0.485, 0.456, 0.406)


def _spec(image_size: int | None = 32) -> RunSpec:
    return RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 40, "image_size": image_size},
            "architecture": {**TINY, "weights": "IMAGENET1K_V1"},
            "train": {"batch_size": 8, "device": "cpu", "fine_tune": {"mode": "off"}},
        }
    )


@pytest.fixture
def mirror(
    published: tuple[Path, dict],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):  # type: ignore[no-untyped-def]
    served, state = published
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path / "cache"))
    with FileServer(served) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        yield state


def test_the_lr_finder_downloads_the_weights_first_as_a_stage(mirror: dict) -> None:
    spec = _spec()
    assert pw.cached_weights_path(spec.architecture) is None
    stages: list[tuple[str, int, int]] = []
    result = lr_range_test(spec, steps=10, progress=lambda *a: stages.append(a))
    downloads = [s for s in stages if s[0] == DOWNLOADING]
    assert downloads and downloads[-1][1] == downloads[-1][2] > 0
    assert stages.index(downloads[0]) < len(stages) - len(downloads)  # before the probing
    assert pw.cached_weights_path(spec.architecture) is not None
    assert len(result.losses) == 10


def test_a_probe_starts_from_the_weights_and_normalises_as_training(mirror: dict) -> None:
    spec = _spec()
    prepared = prepare(spec.dataset, architecture=spec.architecture)
    with Probe(spec, prepared=prepared) as probe:
        conv = probe.model.layer1[0].conv1.weight.detach().cpu()
        assert torch.equal(conv, mirror["layer1.0.conv1.weight"])
        normalize = probe.data.normalize
        assert normalize is not None and "IMAGENET1K_V1" in normalize.source
        np.testing.assert_allclose(normalize.mean, IMAGENET_MEAN, atol=1e-6)


def test_auto_size_follows_the_weights_in_the_tuners_too(mirror: dict) -> None:
    spec = _spec(image_size=None)
    prepared = prepare(spec.dataset, architecture=spec.architecture)
    assert prepared.images.shape[1:3] == (224, 224)  # resnet18's IMAGENET1K_V1 crop


def test_a_stop_during_the_download_cancels_the_tuner(mirror: dict) -> None:
    spec = _spec()
    with pytest.raises(Cancelled):
        lr_range_test(spec, steps=10, should_stop=lambda: True)
    assert pw.cached_weights_path(spec.architecture) is None
