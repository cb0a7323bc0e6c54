"""timm models as an architecture source: built for the dataset, searched, weights from a file.

Never downloads: models are built with pretrained=False and weights come from a file saved
here from a timm model, in timm's own format.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("timm")

import timm
from safetensors.torch import save_file

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape, build_model
from cnn_lab.engine.models.architecture_summary import summarize_architecture
from cnn_lab.engine.models.export import export_model
from cnn_lab.engine.models.timm_source import (
    family_of,
    search_timm,
    timm_data_config,
    timm_pretrained_file,
)
from cnn_lab.engine.specs import ArchitectureSpec

MODEL = "test_resnet"  # timm's own tiny test network
SHAPE = InputShape(channels=1, height=32, width=32, classes=4)


def _arch(**fields: object) -> ArchitectureSpec:
    return ArchitectureSpec.from_dict({"preset": "timm", "timm_model": MODEL, **fields})


def test_built_for_the_datasets_classes_and_channels() -> None:
    model = build_model(_arch(), SHAPE)
    assert isinstance(model, timm.models.ResNet)
    model.eval()
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 4)


def test_summary_on_the_meta_device_counts_what_timm_builds() -> None:
    summary = summarize_architecture(_arch(), SHAPE)
    real = timm.create_model(MODEL, pretrained=False, num_classes=4, in_chans=1)
    assert summary.params == sum(p.numel() for p in real.parameters())
    assert summary.macs > 0 and {layer.name: layer.output_shape for layer in summary.layers}[
        "fc"
    ] == (4,)


def test_a_vision_transformer_is_told_the_datasets_size() -> None:
    arch = ArchitectureSpec.from_dict({"preset": "timm", "timm_model": "test_vit"})
    summary = summarize_architecture(arch, InputShape(3, 32, 32, 5))
    shapes = {layer.name: layer.output_shape for layer in summary.layers}
    assert shapes["head"] == (5,) and shapes["patch_embed"][:2] == (2, 2)  # 32 px / 16 px


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_weights_in_timms_format_load_from_a_local_file(tmp_path: Path, suffix: str) -> None:
    torch.manual_seed(1)
    published = timm.create_model(MODEL, pretrained=False, num_classes=1000, in_chans=1)
    path = tmp_path / f"model{suffix}"
    state = {k: v.contiguous() for k, v in published.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    model = build_model(_arch(pretrained=str(path), freeze_backbone=True), SHAPE)
    assert "fc.weight" in model.pretrained_report  # the 1000-class head is skipped, said so
    first = model.conv1[0].weight
    torch.testing.assert_close(first, published.conv1[0].weight)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}


def test_search_by_name_family_and_wildcard() -> None:
    by_family = [info.name for info in search_timm("resnet", 200)]
    families = [family_of(n) == "resnet" for n in by_family]
    assert families[0] and families == sorted(families, reverse=True)  # the family first
    assert "resnet18" in by_family and "resnet50" in by_family
    assert all("resnet" in n for n in by_family)
    exact = search_timm("resnet18", 3)
    assert exact[0].name == "resnet18" and exact[0].family == "resnet"
    assert "a1_in1k" in exact[0].pretrained_tags and exact[0].input_size == (3, 224, 224)
    wild = [info.name for info in search_timm("efficientnet_b*", 50)]
    assert "efficientnet_b0" in wild and all(n.startswith("efficientnet_b") for n in wild)
    assert search_timm("no-such-net-anywhere", 5) == []
    (counted,) = search_timm(MODEL, 1, with_params=True)
    assert counted.params == sum(
        p.numel() for p in timm.create_model(MODEL, pretrained=False).parameters()
    )


def test_data_config_follows_the_weights() -> None:
    config = timm_data_config("test_resnet")
    assert config["input_size"] == (3, 160, 160)
    assert config["mean"] == pytest.approx((0.5, 0.5, 0.5))
    assert config["interpolation"] == "bilinear" and 0 < config["crop_pct"] <= 1
    tagged = timm_data_config("resnet18.a1_in1k")
    assert tagged["interpolation"] == "bicubic"
    assert tagged["std"] == pytest.approx((0.229, 0.224, 0.225))


def test_where_the_published_weights_are() -> None:
    hub = timm_pretrained_file("resnet18.a1_in1k")
    assert hub.model == "resnet18.a1_in1k" and hub.hf_hub_id == "timm/resnet18.a1_in1k"
    assert hub.url == "https://huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors"
    default = timm_pretrained_file("resnet18")
    assert default.model.startswith("resnet18.") and default.filename


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("resnet18x", "no model called 'resnet18x'.*Did you mean"),
        ("resnet18.nope", "no pretrained tag 'nope'"),
    ],
)
def test_unknown_names_and_tags_are_sentences(name: str, message: str) -> None:
    arch = ArchitectureSpec.from_dict({"preset": "timm", "timm_model": name})
    with pytest.raises(UserError, match=message):
        build_model(arch, SHAPE)


def test_torchscript_export_of_a_timm_network(tmp_path: Path) -> None:
    model = build_model(_arch(), SHAPE).eval()
    result = export_model(model, (1, 32, 32), tmp_path / "net.pt", "torchscript")
    assert result.path.is_file() and result.max_abs_diff < 1e-3


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("resnet18", "resnet"),
        ("resnet10t", "resnet"),
        ("efficientnet_b0", "efficientnet"),
        ("tf_efficientnet_b0", "efficientnet"),
        ("convnextv2_atto", "convnextv2"),
        ("mobilenetv3_large_100", "mobilenetv3"),
        ("vit_base_patch16_224", "vit"),
    ],
)
def test_a_family_keeps_its_version_and_drops_sizes_and_ports(name: str, family: str) -> None:
    assert family_of(name) == family


def test_more_words_narrow_the_search_by_size() -> None:
    names = [info.name for info in search_timm("convnext tiny", 20)]
    assert names[0] == "convnext_tiny"
    assert names and all("tiny" in n and "convnext" in n for n in names)
