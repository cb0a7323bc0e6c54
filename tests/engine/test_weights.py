"""Pretrained weights: safe loading, shape-checked matching, and a truly frozen backbone.

Malicious pickles and truncated files are fault cases: tests/faults/test_bad_files.py.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape, build_model
from cnn_lab.engine.models.weights import (
    LoadReport,
    SkippedTensor,
    freeze_backbone,
    load_pretrained,
)
from cnn_lab.engine.specs import ArchitectureSpec

CIFAR = InputShape(channels=3, height=32, width=32, classes=10)
HUNDRED = InputShape(channels=3, height=32, width=32, classes=100)
SMALL = {"preset": "resnet18", "width": 0.25}


def _model(shape: InputShape = CIFAR, seed: int = 0, **spec: object) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(ArchitectureSpec(**{**SMALL, **spec}), shape)


def _trained_like(model: nn.Module) -> nn.Module:
    """Give BatchNorm running stats that differ from a fresh model's, so they are checked too."""
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if buffer.is_floating_point():
                buffer.add_(torch.rand_like(buffer) * (1 if "var" in name else 0.1))
    return model.eval()


def _save(model: nn.Module, path: Path) -> Path:
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    else:
        torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def source() -> nn.Module:
    return _trained_like(_model(seed=1))


@pytest.mark.parametrize("name", ["weights.safetensors", "weights.pt"])
def test_round_trip_gives_the_same_outputs(source: nn.Module, tmp_path: Path, name: str) -> None:
    path = _save(source, tmp_path / name)
    fresh = _model(seed=2).eval()
    report = load_pretrained(fresh, path)
    assert report.skipped == report.missing == report.unexpected == ()
    assert len(report.loaded) == len(source.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), source(x), rtol=0, atol=0)


@pytest.mark.parametrize("key", ["state_dict", "model", "model_state_dict"])
def test_checkpoint_dicts_and_dataparallel_prefixes(
    source: nn.Module, tmp_path: Path, key: str
) -> None:
    wrapped = {f"module.{k}": v for k, v in source.state_dict().items()}
    torch.save({key: wrapped, "epoch": 7, "optimizer": {"lr": 0.1}}, tmp_path / "ckpt.pth")
    fresh = _model(seed=2)
    report = load_pretrained(fresh, tmp_path / "ckpt.pth")
    assert not report.missing and not report.unexpected
    torch.testing.assert_close(fresh.state_dict()["fc.weight"], source.state_dict()["fc.weight"])


def test_classifier_of_another_size_is_skipped_and_reported(
    source: nn.Module, tmp_path: Path
) -> None:
    path = _save(source, tmp_path / "ten.safetensors")
    fresh = _model(HUNDRED, seed=2)
    fresh_head = fresh.fc.weight.detach().clone()
    report = load_pretrained(fresh, path)
    assert report.skipped == (
        SkippedTensor("fc.weight", (10, 128), (100, 128)),
        SkippedTensor("fc.bias", (10,), (100,)),
    )
    assert torch.equal(fresh.fc.weight, fresh_head)
    torch.testing.assert_close(fresh.conv1.weight, source.conv1.weight)
    assert "skipped 2 whose shape differs (fc.weight: file 10×128, network 100×128" in (
        report.sentence()
    )


def test_missing_and_unexpected_are_reported(source: nn.Module, tmp_path: Path) -> None:
    state = dict(source.state_dict())
    del state["layer4.1.bn2.running_var"]
    state["extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "odd.pt")
    report = load_pretrained(_model(seed=2), tmp_path / "odd.pt")
    assert report.missing == ("layer4.1.bn2.running_var",)
    assert report.unexpected == ("extra.weight",)
    sentence = report.sentence()
    assert "1 missing from the file (layer4.1.bn2.running_var)" in sentence
    assert "1 in the file unused (extra.weight)" in sentence


@pytest.mark.parametrize(("content", "message"), [(b"", "is empty"), (b"hi\n", "corrupt")])
def test_not_a_weights_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "notes.pth"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_pretrained(_model(), path)


@pytest.mark.parametrize("content", [[1, 2, 3], {"epoch": 3}, {"model": {"lr": 0.1}}])
def test_a_file_without_tensors_is_refused(tmp_path: Path, content: object) -> None:
    torch.save(content, tmp_path / "nothing.pt")
    with pytest.raises(UserError, match="holds no named tensors"):
        load_pretrained(_model(), tmp_path / "nothing.pt")


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_pretrained(_model(), tmp_path / "nowhere.safetensors")


def test_weights_of_another_network_are_refused(tmp_path: Path) -> None:
    other = build_model(ArchitectureSpec(preset="mobilenet_v3_small", width=0.25), CIFAR)
    path = _save(other, tmp_path / "mobilenet.safetensors")
    with pytest.raises(UserError, match=r"does not fit this network: only \d+ of 62 parameter"):
        load_pretrained(_model(), path)


def test_meta_models_check_shapes_without_copying(source: nn.Module, tmp_path: Path) -> None:
    path = _save(source, tmp_path / "w.safetensors")
    with torch.device("meta"):
        meta = build_model(ArchitectureSpec(**SMALL), HUNDRED)
    report = load_pretrained(meta, path)
    assert [s.name for s in report.skipped] == ["fc.weight", "fc.bias"]
    assert all(p.is_meta for p in meta.parameters())
    assert freeze_backbone(meta) == sum(p.numel() for p in meta.parameters()) - 128 * 100 - 100


def test_freeze_keeps_only_the_head_trainable(source: nn.Module) -> None:
    model = copy.deepcopy(source)
    frozen = freeze_backbone(model)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    assert frozen == sum(p.numel() for p in model.parameters()) - model.fc.weight.numel() - 10


def test_a_training_step_changes_only_the_head(source: nn.Module) -> None:
    model = copy.deepcopy(source)
    freeze_backbone(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.arange(4))
    loss.backward()
    optimizer.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"fc.weight", "fc.bias"}  # BatchNorm running stats stay put too
    assert model.bn1.training is False


def test_head_batchnorm_after_the_last_linear_stays_trainable() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 4), nn.BatchNorm1d(4)
    )
    freeze_backbone(model)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "3.weight",
        "3.bias",
        "4.weight",
        "4.bias",
    ]
    model.train()
    model(torch.randn(2, 3, 3, 3))
    assert (model[1].training, model[4].training) == (False, True)


def test_freezing_a_network_without_a_linear_head_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no linear classifier"):
        freeze_backbone(nn.Sequential(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(1)))


def test_build_model_loads_and_freezes_end_to_end(source: nn.Module, tmp_path: Path) -> None:
    path = _save(source, tmp_path / "resnet18.safetensors")
    spec = ArchitectureSpec(**SMALL, pretrained=os.fspath(path), freeze_backbone=True)
    model = build_model(spec, HUNDRED)
    torch.testing.assert_close(model.layer3[0].conv2.weight, source.layer3[0].conv2.weight)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_load_report_is_frozen() -> None:
    report = LoadReport(loaded=("a",), skipped=(), missing=(), unexpected=())
    with pytest.raises(AttributeError):
        report.loaded = ()  # type: ignore[misc]
    assert report.sentence() == "Loaded 1 of the network's 1 tensors."
