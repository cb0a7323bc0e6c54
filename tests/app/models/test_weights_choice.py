"""The weights combo's lines, module files read without running them, and the texts around
them: Qt-free, on torchvision's real catalogue and a real torch.hub cache folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from cnn_lab.app.models import data_form, network_sources, weights_choice
from cnn_lab.app.models.architecture_form import ArchitectureForm
from cnn_lab.app.models.weights_choice import Published
from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape
from cnn_lab.engine.models.module_source import read_module_source
from cnn_lab.engine.models.published_weights import find_weights
from cnn_lab.engine.models.trust import trust
from cnn_lab.engine.specs import ArchitectureSpec, DatasetSpec

RESNET18 = ArchitectureSpec(preset="resnet18")
SHAPE = InputShape(channels=3, height=32, width=32, classes=10)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("CNN_LAB_CONFIG", str(tmp_path / "config"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_resnet18s_catalogue_shows_accuracy_size_and_whether_it_is_downloaded(hub: Path) -> None:
    (listed,) = weights_choice.catalogue(RESNET18)
    assert (listed.name, listed.is_default, listed.cached) == ("IMAGENET1K_V1", True, False)
    label = weights_choice.published_label(listed)
    assert label == "IMAGENET1K_V1 · 69.8 % top-1 · 44.7 MB to download (default)"

    hub.mkdir(parents=True)
    (hub / find_weights(RESNET18, "IMAGENET1K_V1").filename).write_bytes(b"weights")
    (cached,) = weights_choice.catalogue(RESNET18)
    assert cached.cached
    assert "44.7 MB · downloaded" in weights_choice.published_label(cached)
    assert "no network" in weights_choice.published_tip(cached)
    # timm's configs give no size or accuracy: the line says only what is known.
    unknown = replace(listed, accuracy=None, file_mb=None, name="d2_in1k")
    assert weights_choice.published_label(unknown) == "d2_in1k · to download (default)"
    done = replace(unknown, cached=True, is_default=False)
    assert weights_choice.published_label(done) == "d2_in1k · downloaded"


def test_a_network_without_published_weights_has_an_empty_catalogue(hub: Path) -> None:
    assert weights_choice.catalogue(ArchitectureSpec()) == ()


def test_the_lines_are_random_published_file_then_pick_and_the_spec_picks_one() -> None:
    published = (Published("V1", 69.8, 44.7, False, True), Published("V2", 80.9, 97.8, True, False))
    lines = weights_choice.entries(RESNET18, published)
    assert [line.kind for line in lines] == ["random", "published", "published", "pick"]
    assert weights_choice.current_index(lines, RESNET18) == 0
    spec = RESNET18.model_copy(update={"weights": "V2"})
    assert lines[weights_choice.current_index(lines, spec)].value == "V2"

    with_file = RESNET18.model_copy(update={"pretrained": "/w/mine.pt"})
    lines = weights_choice.entries(with_file, published)
    assert lines[weights_choice.current_index(lines, with_file)].label == "File: mine.pt"
    # Weights named before the catalogue has arrived still show as a line of their own.
    lines = weights_choice.entries(spec, ())
    assert lines[weights_choice.current_index(lines, spec)].value == "V2"


def test_bytes_text_says_megabytes_and_time_left() -> None:
    text = weights_choice.bytes_text("V1", 12_300_000, 44_700_000, 12.0)
    assert text.startswith("Downloading V1 · 12.3 of 44.7 MB · ")
    assert text.endswith("left")


def test_published_weights_and_a_file_exclude_each_other_and_freezing_follows() -> None:
    form = ArchitectureForm(RESNET18, SHAPE)
    edit = form.set_weights("IMAGENET1K_V1")
    assert edit is not None and edit.after.weights == "IMAGENET1K_V1"
    form.show(edit.after.model_copy(update={"freeze_backbone": True}), None)
    edit = form.set_pretrained("/w/mine.pt")
    assert edit is not None and (edit.after.weights, edit.after.pretrained) == ("", "/w/mine.pt")
    cleared = form.set_weights("")
    assert cleared is not None and not cleared.after.starts_pretrained
    assert not cleared.after.freeze_backbone


def test_timm_and_module_networks_are_entered_and_left_cleanly(tmp_path: Path) -> None:
    form = ArchitectureForm(RESNET18.model_copy(update={"weights": "IMAGENET1K_V1"}), SHAPE)
    edit = form.choose_timm("resnet18")
    assert edit is not None
    assert (edit.after.preset, edit.after.timm_model, edit.after.weights) == (
        "timm",
        "resnet18",
        "",
    )
    form.show(edit.after, None)
    assert "built by timm" in network_sources.description(form.spec, None)
    back = form.choose_preset("small_cnn")
    assert back is not None and (back.after.preset, back.after.timm_model) == ("small_cnn", "")

    file = tmp_path / "net.py"
    file.write_text("import torch\nclass Net(torch.nn.Module):\n    pass\n")
    edit = form.choose_module(read_module_source(file, "Net"))
    assert edit is not None and edit.after.module is not None
    form.show(edit.after, None)
    assert network_sources.entry_text(form.spec, "module") == "Module: Net (net.py)"
    assert form.new_network() is not None  # a custom network drops the module


def test_module_classes_are_read_without_running_the_file(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    code = (
        f"open({str(ran)!r}, 'w').write('yes')\n"
        "import torch\nfrom torch import nn\n"
        "class Helper:\n    pass\n"
        "class Net(nn.Module):\n    pass\n"
    )
    assert network_sources.module_classes(code, "net.py") == ["Net", "Helper"]
    assert not ran.exists()
    with pytest.raises(UserError, match=r"net.py is not valid Python at line 2 \(def \(:\)"):
        network_sources.module_classes("x = 1\ndef (:\n", "net.py")
    with pytest.raises(UserError, match="defines no class"):
        network_sources.module_classes("x = 1\n", "net.py")


def test_keyword_arguments_are_a_json_object_said_about_the_box() -> None:
    assert network_sources.parse_kwargs(' {"width": 8} ') == {"width": 8}
    assert network_sources.parse_kwargs("") == {}
    with pytest.raises(UserError, match=r"^The keyword arguments are not valid JSON"):
        network_sources.parse_kwargs("{width: 8}")


def test_a_loaded_module_waits_until_its_code_is_trusted(hub: Path, tmp_path: Path) -> None:
    file = tmp_path / "net.py"
    file.write_text("import torch\nclass Net(torch.nn.Module):\n    pass\n")
    spec = ArchitectureSpec(preset="module", module=read_module_source(file, "Net"))
    assert "will run the code in net.py" in network_sources.untrusted_text(spec)
    assert spec.module is not None
    trust(spec.module.sha256)
    assert network_sources.untrusted_text(spec) == ""
    assert network_sources.untrusted_text(RESNET18) == ""


def test_the_data_panel_line_says_what_the_weights_expect_and_what_overrides_it() -> None:
    weighted = RESNET18.model_copy(update={"weights": "IMAGENET1K_V1"})
    assert data_form.weights_expect(RESNET18, DatasetSpec()) == ""
    text = data_form.weights_expect(weighted, DatasetSpec())
    assert text.startswith("The IMAGENET1K_V1 weights expect 224 px images")
    assert "Image size auto uses their 224 px." in text
    assert "normalised with their mean and std" in text
    own = data_form.weights_expect(weighted, DatasetSpec(image_size=64, normalize="dataset"))
    assert "Your image size (64 px) is used instead of their 224 px." in own
    assert "this dataset's own mean and std" in own
