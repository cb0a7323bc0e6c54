"""Opening the window must not import torch, and the CLI/screenshot paths fail in one line.

Each check runs in a fresh interpreter: in this test process other tests have long since
imported torch, so ``sys.modules`` here proves nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SHOW_WINDOW = r"""
import json, sys, time
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication
from cnn_lab.app.gui import create_window
app = QApplication(sys.argv[:1])
window = create_window(sys.argv[1])
window.show()
app.processEvents()
shown = time.perf_counter() - t0
print(json.dumps({"shown_s": shown, "torch": "torch" in sys.modules,
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] == "torch")[:5]}))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen"}


def test_opening_the_window_does_not_import_torch(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SHOW_WINDOW, str(tmp_path / "runs.sqlite")],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["torch"] is False, result["modules"]
    assert result["shown_s"] > 0


def _cnn_lab(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cnn_lab.app.main", "--db", str(tmp_path / "runs.sqlite"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=_env(),
    )


def test_screenshot_writes_a_png_of_one_panel(tmp_path: Path) -> None:
    out = tmp_path / "shots" / "runs.png"
    done = _cnn_lab("--screenshot", str(out), "--panel", "runs", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from PySide6.QtGui import QImage

    image = QImage(str(out))
    assert (image.width(), image.height()) == (1280, 720)  # app/gui.py SCREENSHOT_SIZE


def test_screenshot_of_an_unknown_panel_is_one_clear_line(tmp_path: Path) -> None:
    done = _cnn_lab("--screenshot", str(tmp_path / "x.png"), "--panel", "nope", tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no panel called 'nope'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_panel_without_screenshot_is_refused(tmp_path: Path) -> None:
    done = _cnn_lab("--panel", "runs", tmp_path=tmp_path)
    assert done.returncode == 2
    assert "--panel, --runs, --drop and --theme only work with --screenshot" in done.stderr


def test_a_screenshot_of_runs_that_are_not_there_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    done = _cnn_lab("--screenshot", str(out), "--runs", "7,8", tmp_path=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "None of the runs [7, 8] is listed" in done.stderr and not out.exists()
    done = _cnn_lab("--screenshot", str(out), "--runs", "7,x", tmp_path=tmp_path)
    assert done.returncode == 2 and "--runs takes run ids separated by commas" in done.stderr


def test_a_database_that_is_not_sqlite_is_refused_before_the_window(tmp_path: Path) -> None:
    bad = tmp_path / "runs.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    done = _cnn_lab("--screenshot", str(tmp_path / "y.png"), tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert bad.read_bytes() == b"this is not a database" * 100  # nothing overwritten
    assert json.dumps(done.stderr)  # printable
