"""``cnn-lab data inspect|bench|export`` and ``train --data FOLDER`` on real files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cnn_lab.engine.cli.common import run_command
from cnn_lab.engine.cli.main import build_parser
from tests.engine.image_folders import write_class_folder


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNN_LAB_CACHE", str(tmp_path / "cache"))


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(list(argv))
    return run_command(args, out, err), out.getvalue(), err.getvalue()


def test_inspect_json_names_classes_skips_and_warnings(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "d", {"cat": 12, "dog": 3})
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    code, out, err = cli("data", "inspect", str(root), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["images"] == 15
    assert report["classes"] == {"cat": 12, "dog": 3}
    assert report["skipped"] == [
        {"path": "dog/broken.jpg", "reason": report["skipped"][0]["reason"]}
    ]
    assert {w["code"] for w in report["warnings"]} >= {"few_images"}
    # Auto's choice and its reason (issue 19): 40×30 colour images keep their longer side.
    assert (report["image_size"], report["channels"]) == (40, 3)
    assert "(auto)" in report["preprocess_reason"] and "40×30" in report["preprocess_reason"]

    code, out, _ = cli("data", "inspect", str(root))
    assert code == 0
    assert "dog/broken.jpg:" in out and "cat" in out and "warning:" in out
    assert f"size and channels: {report['preprocess_reason']}" in out

    code, out, _ = cli("data", "inspect", str(root), "--size", "24", "--channels", "1")
    assert code == 0 and "prepared at 24×24×1" in out and "24 px, 1 channel, as set." in out


def test_bench_reports_images_per_second(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "d", {"a": 30, "b": 30})
    code, out, err = cli(
        "data", "bench", str(root), "--json", "--seconds", "0.2", "--augment", "hflip,cutout=0.3"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["images_per_s"] > 0 and result["images"] > 0
    assert result["augment"] == "hflip=0.5,cutout=0.3"
    assert result["device"].startswith(("cpu", "cuda"))


def test_export_then_train_on_the_folder(tmp_path: Path, db_path: Path) -> None:
    out_dir = tmp_path / "exported"
    code, out, err = cli("data", "export", "sample:shapes", str(out_dir), "--limit", "400")
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir())[:2] == ["bar", "circle"]
    assert sum(1 for _ in out_dir.rglob("*.png")) == 400
    code, out, err = cli("data", "export", "sample:shapes", str(out_dir))
    assert code == 2 and "not empty" in err

    code, out, err = cli(
        "train",
        "--data",
        str(out_dir),
        "--size",
        "32",
        "--epochs",
        "1",
        "--json",
        "--db",
        str(db_path),
        "--test",
        "0.1",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "completed"


def test_bad_data_options_are_one_line(tmp_path: Path) -> None:
    code, _, err = cli("data", "inspect", str(tmp_path / "missing"))
    assert code == 2 and err.count("\n") == 1 and "no file or folder" in err
    code, _, err = cli("data", "inspect", "sample:shapes", "--augment", "hflip=lots")
    assert code == 2 and "strength" in err
    code, _, err = cli("data", "bench", "sample:shapes", "--augment", "wobble", "--seconds", "0.1")
    assert code == 2 and "wobble" in err and "hflip" in err
    code, _, err = cli("data", "inspect", "sample:shapes", "--val", "0.5", "--test", "0.4")
    assert code == 2 and "at least 20%" in err


def test_training_refuses_a_one_class_folder_with_the_reason(tmp_path: Path, db_path: Path) -> None:
    root = write_class_folder(tmp_path / "d", {"only": 10})
    code, out, _err = cli("train", "--data", str(root), "--json", "--db", str(db_path))
    assert code == 1
    result = json.loads(out)
    assert result["status"] == "failed" and "two or more" in result["reason"]
