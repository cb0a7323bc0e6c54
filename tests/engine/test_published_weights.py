"""Published weights: torchvision's catalogue, the download before building, loading from the
cache (stem adapted for greyscale), and the preprocessing that follows the weights."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from cnn_lab.engine.data.auto_preprocess import choose_for_arrays
from cnn_lab.engine.data.listing import ArrayListing
from cnn_lab.engine.data.normalization import TRAINING_IMAGES, choose_normalization
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape, build_model
from cnn_lab.engine.models import published_weights as pw
from cnn_lab.engine.models.hub_download import MIRROR_ENV, hub_checkpoints_dir
from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec
from cnn_lab.engine.train.events import DataProgress
from tests.local_http import FileServer

TINY = {"preset": "resnet18", "width": 0.25}
"""ResNet-18 at a quarter width: torchvision's own class, a 0.7 M-parameter file."""


def test_resnet18s_catalogue_is_torchvisions_metadata() -> None:
    listed = pw.published_weights(ArchitectureSpec(preset="resnet18"))
    assert [w.name for w in listed] == ["IMAGENET1K_V1"]
    (w,) = listed
    assert w.is_default and w.source == "torchvision" and w.arch == "resnet18"
    assert w.accuracy == pytest.approx(69.758)
    assert w.file_mb == pytest.approx(44.661)
    assert w.params == 11_689_512 and w.categories == 1000
    assert w.crop_size == 224 and w.resize_size == 256
    assert w.mean == pytest.approx((0.485, 0.456, 0.406))
    assert w.std == pytest.approx((0.229, 0.224, 0.225))
    assert w.filename == "resnet18-f37072fd.pth"
    resnet50 = pw.published_weights(ArchitectureSpec(preset="resnet50"))
    assert [w.name for w in resnet50 if w.is_default] == ["IMAGENET1K_V2"]
    assert pw.published_weights(ArchitectureSpec(preset="small_cnn")) == []


def test_names_are_found_or_refused_with_the_known_ones() -> None:
    spec = ArchitectureSpec(preset="resnet50", weights="IMAGENET1K_V1")
    assert pw.find_weights(spec).name == "IMAGENET1K_V1"
    assert pw.find_weights(spec, "default").name == "IMAGENET1K_V2"
    with pytest.raises(UserError) as caught:
        pw.find_weights(spec, "IMAGENET1K_V9")
    assert "IMAGENET1K_V1, IMAGENET1K_V2" in caught.value.message
    with pytest.raises(UserError, match="no published weights"):
        pw.find_weights(ArchitectureSpec(preset="small_cnn"), "X")


def test_expected_preprocessing_says_what_the_weights_expect() -> None:
    expected = pw.expected_preprocessing(
        ArchitectureSpec(preset="efficientnet_b3", weights="DEFAULT")
    )
    assert expected is not None
    assert expected.size == 300 and expected.weights == "IMAGENET1K_V1"
    assert expected.sentence.startswith("The IMAGENET1K_V1 weights expect 300 px images")
    assert pw.expected_preprocessing(ArchitectureSpec(preset="resnet18")) is None


# -- a "published" file of a tiny net, served from 127.0.0.1 ---------------------------------


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    """The tiny net's state dict (1000 classes, 3 channels, ImageNet-sized stem) served under a
    torch.hub name with its hash prefix; resnet18's catalogue entry points at it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    source = build_model(ArchitectureSpec(**TINY), InputShape(3, 96, 96, 1000))
    state = {k: v.clone() for k, v in source.state_dict().items()}
    served = tmp_path / "served"
    served.mkdir()
    raw = served / "raw.pth"
    torch.save(state, raw)
    name = f"tiny_resnet18-{hashlib.sha256(raw.read_bytes()).hexdigest()[:10]}.pth"
    raw.rename(served / name)
    real = pw._torchvision_catalogue

    def catalogue(builder: str) -> tuple[pw.PublishedWeights, ...]:
        return tuple(
            dataclasses.replace(w, url=f"https://download.example.invalid/models/{name}")
            for w in real(builder)
        )

    monkeypatch.setattr(pw, "_torchvision_catalogue", catalogue)
    return served, state


def _spec(**changes: object) -> ArchitectureSpec:
    return ArchitectureSpec(**{**TINY, "weights": "IMAGENET1K_V1", **changes})


def test_building_never_downloads_it_says_how_instead(published: tuple[Path, dict]) -> None:
    with pytest.raises(UserError) as caught:
        build_model(_spec(), InputShape(3, 96, 96, 5))
    assert "not downloaded yet" in caught.value.message
    assert "pick a weights file" in (caught.value.hint or "")
    assert pw.cached_weights_path(_spec()) is None


def test_downloaded_once_then_loaded_with_the_head_skipped(
    published: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    served, state = published
    seen: list[tuple[str, int, int]] = []
    with FileServer(served) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        path = pw.ensure_weights(_spec(), lambda *a: seen.append(a))
    assert path.parent == hub_checkpoints_dir() and pw.cached_weights_path(_spec()) == path
    assert seen[-1][1] == seen[-1][2] == path.stat().st_size
    model = build_model(_spec(), InputShape(3, 96, 96, 5))  # the server is gone: cache only
    assert torch.equal(model.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert model.fc.weight.shape == (5, 128)
    report = model.pretrained_report
    assert report.startswith("IMAGENET1K_V1 weights: Loaded")
    assert "fc.weight: file 1000×128, network 5×128" in report


def _cache(state: dict) -> None:
    spec = _spec()
    path = hub_checkpoints_dir() / pw.find_weights(spec).filename
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def test_a_greyscale_dataset_gets_the_rgb_stem_summed(published: tuple[Path, dict]) -> None:
    _, state = published
    _cache(state)
    model = build_model(_spec(), InputShape(1, 96, 96, 5))
    assert model.conv1.weight.shape[1] == 1
    torch.testing.assert_close(model.conv1.weight, state["conv1.weight"].sum(dim=1, keepdim=True))
    assert "adapted conv1.weight from the file's 3 input channels" in model.pretrained_report


def test_a_small_image_stem_is_skipped_in_a_sentence_not_an_error(
    published: tuple[Path, dict],
) -> None:
    _, state = published
    _cache(state)
    model = build_model(_spec(), InputShape(3, 32, 32, 5))  # CIFAR stem: 3×3, not 7×7
    assert "conv1.weight: file 16×3×7×7, network 16×3×3×3" in model.pretrained_report
    assert torch.equal(model.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])


def test_freeze_backbone_works_with_published_weights(published: tuple[Path, dict]) -> None:
    _, state = published
    _cache(state)
    model = build_model(_spec(freeze_backbone=True), InputShape(3, 96, 96, 5))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}


# -- preprocessing follows the weights --------------------------------------------------------


def _arrays(channels: int = 3) -> ArrayListing:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 28, 28, channels), dtype=np.uint8)
    return ArrayListing("npz", "x", images, np.arange(12) % 3, ("a", "b", "c"))


def test_auto_size_is_the_weights_crop_size_unless_set() -> None:
    expected = pw.expected_preprocessing(ArchitectureSpec(preset="resnet50", weights="DEFAULT"))
    choice = choose_for_arrays(_arrays(), DatasetSpec(source="x.npz"), expected)
    assert choice.prep.size == 224
    assert choice.reason.startswith("224 px, 3 channels (auto): the IMAGENET1K_V2 weights")
    assert "the IMAGENET1K_V2 weights expect 224 px" in choice.reason
    chosen = choose_for_arrays(_arrays(), DatasetSpec(source="x.npz", image_size=64), expected)
    assert chosen.prep.size == 64
    assert choose_for_arrays(_arrays(), DatasetSpec(source="x.npz")).prep.size == 28


def test_normalisation_follows_the_weights_unless_dataset_is_asked() -> None:
    expected = pw.expected_preprocessing(ArchitectureSpec(preset="resnet50", weights="DEFAULT"))
    images = _arrays().images
    train = np.arange(12)
    auto = choose_normalization(DatasetSpec(source="x.npz"), expected, images, train)
    np.testing.assert_allclose(auto.mean, (0.485, 0.456, 0.406))
    np.testing.assert_allclose(auto.std, (0.229, 0.224, 0.225))
    assert auto.as_dict()["from"] == "the IMAGENET1K_V2 weights"
    own = choose_normalization(
        DatasetSpec(source="x.npz", normalize="dataset"), expected, images, train
    )
    assert own.source == TRAINING_IMAGES
    assert own.mean == pytest.approx(images.reshape(-1, 3).mean(0) / 255, abs=1e-6)
    grey = choose_normalization(DatasetSpec(source="x.npz"), expected, images[..., :1], train)
    np.testing.assert_allclose(grey.mean, [np.mean((0.485, 0.456, 0.406))])
    none = choose_normalization(DatasetSpec(source="x.npz"), None, images, train)
    assert none.source == TRAINING_IMAGES


# -- the job downloads first, as a preparing stage --------------------------------------------


def test_the_job_downloads_before_building_and_records_the_normalisation(
    published: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch, db_path: Path
) -> None:
    from cnn_lab.engine.jobs.job import run_job
    from cnn_lab.engine.specs import RunSpec
    from cnn_lab.engine.store import status as st

    served, _ = published
    spec = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 24, "image_size": 96},
            "architecture": {**TINY, "weights": "IMAGENET1K_V1"},
            "train": {"epochs": 1, "batch_size": 12, "device": "cpu"},
        }
    )
    events: list[object] = []
    with FileServer(served) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        record = run_job(spec, db_path, emit=events.append, sample_system=False)
    assert record is not None and record.status == st.COMPLETED, record.reason
    stages = [e.stage for e in events if isinstance(e, DataProgress)]
    assert stages[0] == "Downloading weights"
    assert record.summary["normalize"]["from"] == "the IMAGENET1K_V1 weights"
    assert record.summary["normalize"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert "IMAGENET1K_V1 weights: Loaded" in record.summary["pretrained"]


def test_a_failed_download_fails_the_run_with_the_sentence(
    published: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch, db_path: Path
) -> None:
    import socket

    from cnn_lab.engine.jobs.job import run_job
    from cnn_lab.engine.specs import RunSpec
    from cnn_lab.engine.store import status as st

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}")
    spec = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 24},
            "architecture": {**TINY, "weights": "IMAGENET1K_V1"},
            "train": {"epochs": 1, "device": "cpu"},
        }
    )
    record = run_job(spec, db_path, sample_system=False)
    assert record is not None and record.status == st.FAILED
    assert "could not be downloaded" in record.reason
    assert "pick a weights file" in (record.hint or "")
    assert not list(hub_checkpoints_dir().glob("*.partial"))
