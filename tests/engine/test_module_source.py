"""The person's own nn.Module file as an architecture source: recorded, rebuilt, refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from cnn_lab.engine.errors import UserError
from cnn_lab.engine.models import InputShape, build_model
from cnn_lab.engine.models.module_source import build_module, read_module_source
from cnn_lab.engine.models.trust import CONFIG_ENV_VAR, is_trusted, trust, trust_file
from cnn_lab.engine.search.spec import SearchSpec
from cnn_lab.engine.specs import ArchitectureSpec, RunSpec
from cnn_lab.engine.specs.architecture import code_sha256

SHAPE = InputShape(channels=1, height=8, width=8, classes=3)

NET = """\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes, in_channels=3, width=4):
        super().__init__()
        self.width = width
        self.features = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


class Aliased(nn.Module):
    def __init__(self, n_classes, in_chans):
        super().__init__()
        self.head = nn.Linear(in_chans, n_classes)

    def forward(self, x):
        return self.head(x.mean((2, 3)))


class WrongShape(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(1, 7)

    def forward(self, x):
        return self.head(x.mean((1, 2, 3))[:, None])


class BrokenInit(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.head = nn.Linear(4, num_classes // 0)

    def forward(self, x):
        return x


class Inner(nn.Module):
    def forward(self, x):
        return x.view(-1, 5)


class BrokenForward(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Identity(), Inner())

    def forward(self, x):
        return self.body(x)


NOT_A_MODULE = 42
"""


def _write(tmp_path: Path, text: str = NET, name: str = "nets.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _line_of(text: str) -> int:
    (number,) = [i for i, line in enumerate(NET.splitlines(), 1) if line.strip() == text]
    return number


def _arch(path: Path, class_name: str = "Net", **kwargs: object) -> ArchitectureSpec:
    source = read_module_source(path, class_name, kwargs)
    return ArchitectureSpec.from_dict({"preset": "module", "module": source.model_dump()})


def test_the_file_is_recorded_and_rebuilt_after_it_changes_or_vanishes(tmp_path: Path) -> None:
    path = _write(tmp_path)
    arch = _arch(path, width=6)
    assert arch.module is not None
    assert arch.module.code == path.read_text() and arch.module.sha256 == code_sha256(NET)
    model = build_model(arch, SHAPE)
    x = torch.randn(2, 1, 8, 8)
    assert model(x).shape == (2, 3)
    assert model.head.in_features == 6  # the kwarg reached the class
    assert model.head.out_features == 3 and model.features[0].in_channels == 1  # injected

    # Through JSON (as a run records it), with the file edited and then gone: the same net.
    recorded = ArchitectureSpec.from_json(arch.model_dump_json())
    path.write_text(NET.replace("width=4", "width=99").replace("nn.ReLU()", "nn.Tanh()"))
    again = build_model(recorded, SHAPE)
    path.unlink()
    gone = build_model(recorded, SHAPE)
    for rebuilt in (again, gone):
        rebuilt.load_state_dict(model.state_dict())
        assert isinstance(rebuilt.features[1], torch.nn.ReLU)
        torch.testing.assert_close(rebuilt(x), model(x))


def test_aliases_are_injected_and_the_build_is_free_on_meta(tmp_path: Path) -> None:
    arch = _arch(_write(tmp_path), "Aliased")
    with torch.device("meta"):
        model = build_model(arch, SHAPE)
    assert model.head.weight.is_meta
    assert tuple(model.head.weight.shape) == (3, 1)


def test_the_check_leaves_batchnorm_statistics_and_modes_alone(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        from torch import nn

        class Net(nn.Module):
            def __init__(self, num_classes):
                super().__init__()
                self.bn = nn.BatchNorm2d(1)
                self.head = nn.Linear(1, num_classes)

            def forward(self, x):
                return self.head(self.bn(x + 5).mean((2, 3)))
        """,
    )
    model = build_model(_arch(path), SHAPE)
    assert model.training and model.bn.training
    assert int(model.bn.num_batches_tracked) == 0
    torch.testing.assert_close(model.bn.running_mean, torch.zeros(1))


def test_a_syntax_error_names_the_file_line_and_text(tmp_path: Path) -> None:
    path = _write(tmp_path, "from torch import nn\n\nclass Net(nn.Module)\n    pass\n")
    with pytest.raises(UserError) as caught:
        build_model(_arch(path), SHAPE)
    message = str(caught.value)
    assert f"{path}, line 3: class Net(nn.Module)" in message and "syntax error" in message


def test_an_import_error_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "import torch\nimport no_such_package_here\n")
    with pytest.raises(UserError) as caught:
        build_model(_arch(path), SHAPE)
    message = str(caught.value)
    assert "ModuleNotFoundError" in message
    assert f"{path} line 2: import no_such_package_here" in message


def test_an_exception_in_init_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path)
    with pytest.raises(UserError) as caught:
        build_model(_arch(path, "BrokenInit"), SHAPE)
    message = str(caught.value)
    assert "BrokenInit(...) failed to build" in message and "ZeroDivisionError" in message
    line = "self.head = nn.Linear(4, num_classes // 0)"
    assert f"{path} line {_line_of(line)}: {line}" in message


def test_an_exception_in_forward_names_the_line_and_the_layer(tmp_path: Path) -> None:
    path = _write(tmp_path)
    with pytest.raises(UserError) as caught:
        build_model(_arch(path, "BrokenForward"), SHAPE)
    message = str(caught.value)
    assert "BrokenForward.forward failed in layer body.1 (Inner)" in message
    assert f"{path} line {_line_of('return x.view(-1, 5)')}: return x.view(-1, 5)" in message
    assert "\n" not in message


def test_a_wrong_output_shape_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"output of shape 2×7 .* needs 2×3"):
        build_model(_arch(_write(tmp_path), "WrongShape"), SHAPE)


@pytest.mark.parametrize(
    ("class_name", "kwargs", "message"),
    [
        ("NOT_A_MODULE", {}, "is not a torch.nn.Module subclass"),
        ("Missing", {}, "has no class Missing .*Aliased, BrokenForward"),
        ("Net", {"depth": 3}, "takes no argument 'depth' .*num_classes, in_channels, width"),
    ],
)
def test_refusals_in_words(
    tmp_path: Path, class_name: str, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        build_model(_arch(_write(tmp_path), class_name, **kwargs), SHAPE)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "There is no module file"), (b"\xff\xfe\x00bad", "not UTF-8")],
)
def test_unreadable_files_are_sentences(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "net.py"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_module_source(path, "Net")


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.py"
    path.write_bytes(b"#" * (2 * 1024 * 1024 + 1))
    with pytest.raises(UserError, match="takes files up to"):
        read_module_source(path, "Net")


def test_trust_is_remembered_by_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV_VAR, str(tmp_path / "config"))
    digest, other = code_sha256(NET), code_sha256(NET + "\n")
    assert not is_trusted(digest)
    trust(digest)
    assert is_trusted(digest) and not is_trusted(other)
    assert trust_file().parent == tmp_path / "config"
    trust(other)
    assert is_trusted(digest) and is_trusted(other)
    trust_file().write_text("not json")  # a damaged store trusts nothing; it asks again
    assert not is_trusted(digest)
    with pytest.raises(ValueError):
        trust("not a hash")


def test_a_grid_over_a_module_kwarg_builds_distinct_networks(tmp_path: Path) -> None:
    arch = _arch(_write(tmp_path), width=4)
    base = RunSpec.from_dict({"architecture": arch.model_dump(mode="json")})
    search = SearchSpec.from_dict(
        {
            "base": base.model_dump(mode="json"),
            "strategy": "grid",
            "params": [
                {"path": "architecture.module.kwargs.width", "values": [2, 5]},
                {"path": "train.lr", "values": [0.1]},
            ],
        }
    )
    specs = [search.trial_spec(point, i) for i, point in enumerate(search.grid_points())]
    widths = [spec.architecture.module.kwargs["width"] for spec in specs]  # type: ignore[union-attr]
    assert widths == [2, 5] and len({spec.spec_hash() for spec in specs}) == 2
    models = [build_module(spec.architecture.module, SHAPE) for spec in specs]  # type: ignore[arg-type]
    assert [m.head.in_features for m in models] == [2, 5]


def test_a_search_may_add_a_kwarg_the_base_does_not_give(tmp_path: Path) -> None:
    arch = _arch(_write(tmp_path))
    base = RunSpec.from_dict({"architecture": arch.model_dump(mode="json")})
    search = SearchSpec.from_dict(
        {
            "base": base.model_dump(mode="json"),
            "strategy": "grid",
            "params": [{"path": "architecture.module.kwargs.width", "values": [3]}],
        }
    )
    (spec,) = [search.trial_spec(point, i) for i, point in enumerate(search.grid_points())]
    assert spec.architecture.module is not None and spec.architecture.module.kwargs == {"width": 3}
