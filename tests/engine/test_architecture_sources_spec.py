"""The architecture spec's sources (preset, layers, timm model, own module) and its weights:
what is accepted, what is refused in a sentence, and that old specs hash as they did."""

from __future__ import annotations

import pytest

from cnn_lab.engine.errors import SpecError
from cnn_lab.engine.specs import ArchitectureSpec, RunSpec
from cnn_lab.engine.specs.architecture import ModuleSource, code_sha256

CODE = "import torch\nclass Net(torch.nn.Module):\n    pass\n"


def module(**changes: object) -> dict:
    fields = {
        "path": "nets/mine.py",
        "class_name": "Net",
        "code": CODE,
        "sha256": code_sha256(CODE),
    }
    return {**fields, **changes}


def test_each_source_round_trips_through_json() -> None:
    for data in (
        {"preset": "resnet18", "weights": "IMAGENET1K_V1"},
        {"preset": "timm", "timm_model": "resnet18.a1_in1k", "weights": "default"},
        {"preset": "module", "module": module(kwargs={"hidden": 64, "blocks": [1, 2]})},
    ):
        spec = RunSpec.from_dict({"architecture": data})
        again = RunSpec.from_json(spec.to_json())
        assert again == spec and again.spec_hash() == spec.spec_hash()
    assert ArchitectureSpec(
        preset="timm", timm_model="resnet18", weights="default"
    ).starts_pretrained
    assert not ArchitectureSpec().starts_pretrained


def test_specs_without_the_new_fields_hash_as_before() -> None:
    # The hash of the default run spec, as stored by every earlier version (the queue and the
    # sweeps match past runs by it).
    assert RunSpec().spec_hash() == "87408ed31518ec38"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"preset": "timm"}, "a timm network names its model in timm_model"),
        ({"timm_model": "resnet18"}, "timm_model needs preset 'timm'"),
        ({"preset": "module"}, "a module network gives its file and class in module"),
        ({"module": module()}, "module needs preset 'module'"),
        (
            {"preset": "timm", "timm_model": "resnet18", "width": 2},
            "width and depth scale cnn-lab's and torchvision's presets",
        ),
        (
            {"preset": "resnet18", "weights": "IMAGENET1K_V1", "pretrained": "/w.safetensors"},
            "not both",
        ),
        ({"preset": "module", "module": module(), "weights": "default"}, "pick a weights file"),
        ({"preset": "timm", "timm_model": "bad name"}, "timm_model"),
        ({"preset": "module", "module": module(class_name="1Net")}, "module.class_name"),
        ({"preset": "module", "module": module(sha256="0" * 64)}, "does not match its sha256"),
        ({"preset": "resnet18", "freeze_backbone": True}, "needs pretrained weights"),
    ],
)
def test_bad_sources_are_refused_in_a_sentence(data: dict, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        RunSpec.from_dict({"architecture": data})
    assert words in str(caught.value)


def test_published_weights_alone_allow_freezing_the_backbone() -> None:
    spec = ArchitectureSpec(preset="resnet18", weights="IMAGENET1K_V1", freeze_backbone=True)
    assert spec.freeze_backbone and spec.starts_pretrained
    assert ModuleSource(path="a.py", class_name="A").kwargs == {}
