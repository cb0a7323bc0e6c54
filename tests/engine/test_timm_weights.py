"""timm's published weights: catalogue from pretrained_cfg, download from a mirror on 127.0.0.1
into torch.hub's cache under a name per model and tag, and loading in timm's own format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("timm")

from safetensors.torch import save_file

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape, build_model
from cnn_lab.engine.models import published_weights as pw
from cnn_lab.engine.models.hub_download import MIRROR_ENV, hub_checkpoints_dir
from cnn_lab.engine.models.timm_weights import cache_name
from cnn_lab.engine.specs import ArchitectureSpec
from tests.local_http import FileServer

MODEL = "test_resnet"
"""timm's own test network: a few thousand weights, one published tag (r160_in1k)."""


def _spec(**changes: object) -> ArchitectureSpec:
    return ArchitectureSpec(
        **{"preset": "timm", "timm_model": MODEL, "weights": "default", **changes}
    )


def test_the_catalogue_is_timms_pretrained_tags_with_their_data_config() -> None:
    (w,) = pw.published_weights(_spec())
    assert w.source == "timm" and w.arch == MODEL and w.name == "r160_in1k" and w.is_default
    assert (
        w.url == "https://huggingface.co/timm/test_resnet.r160_in1k/resolve/main/model.safetensors"
    )
    assert w.crop_size == 160 and w.mean == (0.5, 0.5, 0.5) and w.std == (0.5, 0.5, 0.5)
    assert w.categories == 1000 and w.accuracy is None and w.file_mb is None
    assert pw.find_weights(_spec(weights="r160_in1k")) == w
    resnet18 = pw.published_weights(_spec(timm_model="resnet18"))
    assert [x.name for x in resnet18 if x.is_default] == ["a1_in1k"]  # timm's default tag
    assert {"tv_in1k", "a3_in1k"} <= {x.name for x in resnet18}
    with pytest.raises(UserError, match="tv_in1k"):
        pw.find_weights(_spec(timm_model="resnet18", weights="nope"))


def test_expected_preprocessing_follows_timms_data_config() -> None:
    expected = pw.expected_preprocessing(_spec(timm_model="resnet18", weights="a3_in1k"))
    assert expected is not None and expected.size == 160  # a3 was trained at 160 px
    assert expected.mean == pytest.approx((0.485, 0.456, 0.406))
    assert pw.expected_preprocessing(_spec(weights="")) is None


def test_two_models_never_share_a_cache_name() -> None:
    ours = pw.find_weights(_spec())
    other = pw.find_weights(_spec(timm_model="resnet18", weights="tv_in1k"))
    assert cache_name(ours) == "timm_test_resnet.r160_in1k.safetensors"
    assert cache_name(other) == "timm_resnet18.tv_in1k.safetensors"


def test_importing_the_registry_does_not_import_timm() -> None:
    code = (
        "import sys; from cnn_lab.engine.models import published_weights as pw; "
        "assert 'timm' in pw._SOURCES and 'timm' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    """timm's test_resnet (1000 classes, RGB) saved as the hub's safetensors, in a folder
    served as the mirror under the name it is cached by."""
    import timm

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    source = timm.create_model(MODEL, pretrained=False)
    state = {k: v.clone().contiguous() for k, v in source.state_dict().items()}
    folder = tmp_path / "served"
    folder.mkdir()
    save_file(state, folder / cache_name(pw.find_weights(_spec())))
    return folder, state


def test_downloaded_from_the_mirror_then_loaded_with_head_skipped_and_stem_summed(
    served: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, state = served
    shape = InputShape(1, 32, 32, 5)
    with pytest.raises(UserError, match="not downloaded yet"):
        build_model(_spec(), shape)
    seen: list[tuple[str, int, int]] = []
    with FileServer(folder) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        path = pw.ensure_weights(_spec(), lambda *a: seen.append(a))
    assert path == hub_checkpoints_dir() / "timm_test_resnet.r160_in1k.safetensors"
    assert seen[-1][1] == seen[-1][2] == path.stat().st_size
    model = build_model(_spec(), shape)  # the server is gone: the cache only
    stem = "conv1.0.weight"
    torch.testing.assert_close(
        dict(model.named_parameters())[stem], state[stem].sum(dim=1, keepdim=True)
    )
    assert torch.equal(model.state_dict()["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
    assert model.fc.weight.shape[0] == 5
    assert "fc.weight: file 1000×" in model.pretrained_report
    # The spec says "default"; the run says which weights that was.
    assert model.pretrained_report.startswith("r160_in1k weights: Loaded")


def test_a_download_that_is_not_safetensors_is_refused_and_not_kept(
    served: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = served
    (folder / cache_name(pw.find_weights(_spec()))).write_text("<html>rate limited</html>")
    with FileServer(folder) as server:
        monkeypatch.setenv(MIRROR_ENV, server.url)
        with pytest.raises(UserError, match="not a safetensors file"):
            pw.ensure_weights(_spec())
    assert pw.cached_weights_path(_spec()) is None
    assert list(hub_checkpoints_dir().iterdir()) == []
