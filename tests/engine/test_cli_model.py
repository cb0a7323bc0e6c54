"""``cnn-lab model list|summary|export`` on a terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnn_lab.engine.specs import ArchitectureSpec, LayerSpec, RunSpec
from tests.engine.test_cli import assert_refused_in_one_line, invoke

LAYER_KEYS = {"name", "output_shape", "params", "macs"}


def test_summary_json_of_a_preset_matches_the_published_figures() -> None:
    result = invoke(["model", "summary", "resnet18", "--json"])
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["params"] == 11_689_512
    assert abs(data["macs"] / 1.814e9 - 1) < 0.02
    assert data["input_shape"] == [3, 224, 224]
    assert all(set(layer) >= LAYER_KEYS for layer in data["layers"])
    assert data["layers"][-1]["name"] == "fc" and data["layers"][-1]["output_shape"] == [1000]
    assert sum(layer["params"] for layer in data["layers"]) == data["params"]


def test_summary_of_a_spec_file_with_input_classes_and_batch(tmp_path: Path) -> None:
    spec = ArchitectureSpec(
        preset="custom",
        layers=(
            LayerSpec(kind="conv2d", params={"out_channels": 8}),
            LayerSpec(kind="relu"),
            LayerSpec(kind="global_avg_pool"),
            LayerSpec(kind="linear"),
        ),
    )
    arch_file = tmp_path / "net.json"
    arch_file.write_text(spec.model_dump_json())
    run_file = tmp_path / "run.json"
    run_file.write_text(RunSpec(architecture=spec).to_json())
    for path in (arch_file, run_file):
        result = invoke(
            [
                "model",
                "summary",
                str(path),
                "--input",
                "1x28x28",
                "--classes",
                "7",
                "--batch-size",
                "32",
                "--json",
            ]
        )
        assert result.code == 0, result.err
        data = json.loads(result.out)
        # conv 1→8, 3×3, no bias: 72; linear 8→7 with bias: 63
        assert data["params"] == 72 + 63
        assert data["macs"] == 72 * 28 * 28 + 56
        assert [layer["output_shape"] for layer in data["layers"]] == [
            [8, 28, 28],
            [8, 28, 28],
            [8],
            [7],
        ]
        assert data["training_memory_bytes"] > 32 * 8 * 28 * 28 * 4


def test_summary_text_names_the_totals() -> None:
    result = invoke(["model", "summary", "small_cnn", "--input", "3x32x32", "--classes", "10"])
    assert result.code == 0, result.err
    assert "94,762 parameters" in result.out
    assert "Global max pool" in result.out


@pytest.mark.parametrize(
    "argv",
    [
        ["model", "summary", "resnet1000"],
        ["model", "summary", "small_cnn", "--input", "3x32"],
        ["model", "summary", "small_cnn", "--input", "3x0x32"],
        ["model", "summary", "small_cnn", "--classes", "0"],
        ["model", "summary", "missing-file.json"],
        ["model", "summary", "mobilenet_v3_small", "--depth", "2"],
        ["model", "export", "12345", "--out", "x.pt"],
    ],
)
def test_bad_model_arguments_are_refused_in_one_line(argv: list[str], db_path: Path) -> None:
    if argv[1] == "export":
        argv = [*argv, "--db", str(db_path)]
    assert_refused_in_one_line(invoke(argv))


def test_an_impossible_spec_file_is_refused_naming_the_layer(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "preset": "custom",
                "layers": [{"kind": "conv2d"}, {"kind": "linear"}],
            }
        )
    )
    result = invoke(["model", "summary", str(path)])
    assert_refused_in_one_line(result)
    assert "Layer 2 (Linear): needs a flat vector" in result.err
    path.write_text("{not json")
    assert "is not valid JSON" in invoke(["model", "summary", str(path)]).err


def test_list_names_every_preset_and_layer_kind() -> None:
    result = invoke(["model", "list", "--json"])
    data = json.loads(result.out)
    names = {p["name"] for p in data["presets"]}
    assert {"small_cnn", "vgg", "resnet9", "resnet50", "efficientnet_b3"} <= names
    assert {"conv2d", "residual", "mbconv", "linear"} <= {k["kind"] for k in data["layers"]}


def test_train_takes_an_architecture_file(tmp_path: Path, db_path: Path) -> None:
    path = tmp_path / "net.json"
    path.write_text(
        json.dumps(
            {
                "preset": "custom",
                "layers": [
                    {"kind": "separable_conv", "params": {"out_channels": 16, "stride": 2}},
                    {"kind": "batchnorm"},
                    {"kind": "hardswish"},
                    {"kind": "global_avg_pool"},
                    {"kind": "linear"},
                ],
            }
        )
    )
    result = invoke(
        [
            "train",
            "--model",
            str(path),
            "--limit",
            "100",
            "--size",
            "16",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--db",
            str(db_path),
            "--json",
        ]
    )
    assert result.code == 0, result.err
    assert json.loads(result.out)["status"] == "completed"
    # depthwise 3·3×3 = 27, pointwise 3→16 = 48, BN 2·16 = 32, linear 16·10 + 10 = 170
    assert "277 parameters" in result.err
