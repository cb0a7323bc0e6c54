"""``cnn-lab model list|summary`` and ``train`` with a timm model or the person's own module."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from cnn_lab.engine.cli.common import spec_from_args
from cnn_lab.engine.cli.main import build_parser
from tests.engine.test_cli import assert_refused_in_one_line, invoke

NET = """\
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes, in_channels=3, width=4):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))


class Flat(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(x.flatten(1))
"""


@pytest.fixture
def net_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_net.py"
    path.write_text(NET)
    return path


def test_summary_of_a_module_with_kwargs(net_file: Path) -> None:
    result = invoke(
        ["model", "summary", "--module", f"{net_file}:Net", "--module-kwargs", '{"width": 6}',
         "--input", "1x8x8", "--classes", "3", "--json"]
    )  # fmt: skip
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["network"] == f"{net_file}:Net"
    assert data["params"] == (1 * 9 * 6 + 6) + (6 * 3 + 3)
    text = invoke(["model", "summary", "--module", f"{net_file}:Net", "--input", "1x8x8"])
    assert text.code == 0 and f"{net_file}:Net for 1×8×8, 1000 classes" in text.out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--module", "{file}:Flat", "--input", "1x8x8"], "forward failed in layer head"),
        (["--module", "{file}"], "must look like path/to/file.py:ClassName"),
        (["--module", "{file}:Net", "--module-kwargs", "[1]"], "must be a JSON object"),
        (["--module", "{file}:Net", "--module-kwargs", "{bad"], "is not valid JSON"),
        (["--module-kwargs", "{}", "resnet18"], "--module-kwargs needs --module"),
        (["--module", "{file}:Net", "--timm", "resnet18"], "not both"),
        ([], "Name a network"),
    ],
)
def test_module_refusals_are_one_line(net_file: Path, argv: list[str], words: str) -> None:
    result = invoke(["model", "summary", *(a.replace("{file}", str(net_file)) for a in argv)])
    assert_refused_in_one_line(result)
    assert words in result.err


def test_train_options_record_the_modules_code(net_file: Path) -> None:
    args = build_parser().parse_args(
        ["train", "--module", f"{net_file}:Net", "--module-kwargs", '{"width": 2}']
    )
    spec = spec_from_args(args)
    module = spec.architecture.module
    assert spec.architecture.preset == "module" and module is not None
    assert module.code == NET and module.kwargs == {"width": 2}


def test_train_help_says_the_option_runs_the_files_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "This runs the file's code" in help_text and "--timm NAME" in help_text


needs_timm = pytest.mark.skipif(
    importlib.util.find_spec("timm") is None, reason="the timm extra is not installed"
)


@needs_timm
def test_list_searches_timm_and_summary_builds_one() -> None:
    found = invoke(["model", "list", "--timm", "resnet1", "--limit", "5", "--json"])
    assert found.code == 0, found.err
    names = [m["name"] for m in json.loads(found.out)["timm"]]
    assert names and all(n.startswith("resnet1") for n in names) and len(names) <= 5
    summary = invoke(
        ["model", "summary", "--timm", "test_resnet", "--input", "1x32x32", "--classes", "4",
         "--json"]
    )  # fmt: skip
    assert summary.code == 0, summary.err
    data = json.loads(summary.out)
    assert data["network"] == "test_resnet" and data["input_shape"] == [1, 32, 32]
    plain = invoke(["model", "list"])
    assert "--timm TEXT" in plain.out and "--module FILE.py:CLASS" in plain.out


@needs_timm
def test_an_unknown_timm_name_is_one_line() -> None:
    result = invoke(["model", "summary", "--timm", "resnet18x"])
    assert_refused_in_one_line(result)
    assert "timm has no model called 'resnet18x'" in result.err
