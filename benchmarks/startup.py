"""The window appears before torch is imported: how long each takes in a fresh interpreter.

Baseline: a bare ``import torch``, the cost every click on the launcher would pay if the window
imported the engine's training code eagerly. Prints JSON; ratio > 1 means the window is shown
in less time than torch alone takes to import. Median of ``--repeat`` fresh processes each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

SHOW_WINDOW = r"""
import sys, time
t0 = time.perf_counter()
from PySide6.QtWidgets import QApplication
from cnn_lab.app.gui import create_window
app = QApplication(sys.argv[:1])
window = create_window(sys.argv[1])
window.resize(1280, 800)
window.show()
app.processEvents()
print(time.perf_counter() - t0, "torch" in sys.modules)
"""

IMPORT_TORCH = r"""
import time
t0 = time.perf_counter()
import torch
print(time.perf_counter() - t0, True)
"""


def _time(code: str, *args: str) -> tuple[float, bool]:
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True
    )
    seconds, torch_loaded = done.stdout.split()[-2:]
    return float(seconds), torch_loaded == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "runs.sqlite")
        _time(SHOW_WINDOW, db)  # warm the OS file cache for both
        _time(IMPORT_TORCH)
        window = [_time(SHOW_WINDOW, db) for _ in range(args.repeat)]
        torch_import = [_time(IMPORT_TORCH)[0] for _ in range(args.repeat)]
    shown = statistics.median(s for s, _ in window)
    baseline = statistics.median(torch_import)
    print(
        json.dumps(
            {
                "benchmark": "startup",
                "window_shown_s": round(shown, 3),
                "torch_imported_by_window": any(loaded for _, loaded in window),
                "baseline_import_torch_s": round(baseline, 3),
                "ratio_baseline_over_window": round(baseline / shown, 2),
                "repeat": args.repeat,
            }
        )
    )


if __name__ == "__main__":
    main()
