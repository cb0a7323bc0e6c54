"""``cnn-lab tune lr|batch-size``: one JSON object on stdout, progress on stderr, one-line refusals.

The commands run in this process through ``cli.main.main``; one test runs the installed console
script, because only a real process can receive the Ctrl-C that must stop a tuner cleanly.
The speed tuner's behaviour is tested with engine/tune/speed.py; here only its help.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from cnn_lab.engine.cli.common import EXIT_USAGE
from cnn_lab.engine.cli.main import main
from cnn_lab.engine.specs import RunSpec
from tests.engine.test_tune_batch import KEYS as BATCH_KEYS
from tests.engine.test_tune_lr import KEYS as LR_KEYS

CNN_LAB = Path(sys.executable).parent / "cnn-lab"
DATA = ["--data", "sample:shapes", "--limit", "300", "--batch-size", "16", "--device", "cpu"]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def invoke(argv: Sequence[str]) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: --help and refused arguments
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Result(code, out.getvalue(), err.getvalue())


def refused_in_one_line(result: Result) -> None:
    assert result.code == EXIT_USAGE, result
    assert "Traceback" not in result.err
    assert len(result.err.splitlines()) == 1, result.err
    assert result.err.startswith("cnn-lab")
    assert result.out == ""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    spec = RunSpec.from_dict(
        {
            "dataset": {"source": "sample:shapes", "limit": 300},
            "architecture": {"preset": "small_cnn", "width": 0.5},
            "train": {"batch_size": 16, "optimizer": "adamw", "device": "cpu"},
        }
    )
    path = tmp_path / "spec.json"
    path.write_text(spec.to_json(), encoding="utf-8")
    return path


def test_tune_lr_json_is_one_object_and_progress_goes_to_stderr(spec_file: Path) -> None:
    result = invoke(
        ["tune", "lr", "--spec", str(spec_file), "--steps", "20", "--start-lr", "1e-5",
         "--end-lr", "1", "--json"]
    )  # fmt: skip
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == 1, result.out
    data = json.loads(lines[0])
    assert set(data) == LR_KEYS
    assert 10 <= len(data["lrs"]) <= 20
    assert len(data["lrs"]) == len(data["losses"]) == len(data["smoothed"])
    assert data["lrs"][0] == pytest.approx(1e-5)
    assert data["suggestion"] is None or 1e-5 <= data["suggestion"] <= 1
    assert "lr range test:" in result.err
    assert "Traceback" not in result.err


def test_tune_lr_prints_a_summary_without_json() -> None:
    result = invoke(["tune", "lr", *DATA, "--steps", "12", "--start-lr", "1e-4"])
    assert result.code == 0, result.err
    assert result.out.startswith("LR range test: ")
    assert "suggestion" in result.out and "minimum loss" in result.out
    assert "{" not in result.out


def test_tune_batch_size_json_with_a_budget(spec_file: Path) -> None:
    result = invoke(
        ["tune", "batch-size", "--spec", str(spec_file), "--budget-mb", "40",
         "--limit-batch", "64", "--json"]
    )  # fmt: skip
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert set(data) == BATCH_KEYS
    assert data["method"] == "budget"
    assert data["budget_bytes"] == 40 << 20
    assert data["max_batch"] is not None and 1 <= data["max_batch"] <= 64
    assert data["probes"] and data["probes"][-1]["ok"]
    assert "batch-size probe:" in result.err


def test_tune_batch_size_probe_method_to_the_limit() -> None:
    result = invoke(
        ["tune", "batch-size", *DATA, "--method", "probe", "--limit-batch", "16", "--json"]
    )
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["method"] == "probe"
    assert data["max_batch"] == 16
    assert [p["batch"] for p in data["probes"]] == [16]


@pytest.mark.parametrize(
    "argv",
    [
        ["tune", "lr", "--start-lr", "1", "--end-lr", "0.1"],
        ["tune", "lr", "--steps", "3"],
        ["tune", "batch-size", "--limit-batch", "0"],
        ["tune", "batch-size", "--budget-mb", "-1"],
        ["tune", "batch-size", "--method", "guess"],
        ["tune", "lr", "--spec", "/no/such/spec.json"],
        ["tune"],
        ["tune", "sideways"],
    ],
)
def test_mistakes_are_refused_in_one_line(argv: list[str]) -> None:
    refused_in_one_line(invoke(argv))


def test_tune_epoch_time_scales_measured_steps_to_the_splits(spec_file: Path) -> None:
    result = invoke(["tune", "epoch-time", "--spec", str(spec_file), "--steps", "4", "--json"])
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["train_images"], data["val_images"], data["batch_size"]) == (240, 60, 16)
    assert data["images_per_s"] > 0 and data["eval_s"] > 0
    assert data["train_s"] == pytest.approx(240 / data["images_per_s"])
    assert data["epoch_s"] == pytest.approx(data["train_s"] + data["eval_s"])
    text = invoke(["tune", "epoch-time", "--spec", str(spec_file), "--steps", "4"])
    assert text.out.startswith("One epoch takes about ") and "validating 60" in text.out


@pytest.mark.parametrize("tuner", ["lr", "batch-size", "speed", "epoch-time"])
def test_each_tuner_has_help_with_the_spec_options(tuner: str) -> None:
    result = invoke(["tune", tuner, "--help"])
    assert result.code == 0
    for option in ("--spec", "--data", "--model", "--batch-size", "--device", "--json"):
        assert option in result.out
    own = {
        "lr": "--start-lr",
        "batch-size": "--limit-batch",
        "speed": "--options",
        "epoch-time": "--steps",
    }[tuner]
    assert own in result.out


def test_tune_is_listed_in_the_main_help() -> None:
    result = invoke(["--help"])
    assert result.code == 0
    assert "tune" in result.out


def test_ctrl_c_stops_the_lr_test_and_still_reports(spec_file: Path) -> None:
    process = subprocess.Popen(
        [str(CNN_LAB), "tune", "lr", "--spec", str(spec_file), "--steps", "5000", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # wait until the test is stepping
            if line.startswith("lr range test:"):
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    data = json.loads(out)
    assert set(data) == LR_KEYS
    assert 0 < len(data["lrs"]) < 5000
    assert "stopped after" in data["message"]
