"""Build cnn-lab as a one-folder app with PyInstaller: ``python packaging/build.py``.

Runs PyInstaller on packaging/cnn-lab.spec with the build and dist folders outside the
repository (default: <temp>/cnn-lab-build), then prints where the app is, how long the
build took and how large the folder is. Works the same on Linux, Windows and macOS.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

PACKAGING = Path(__file__).resolve().parent
SPEC = PACKAGING / "cnn-lab.spec"
DEFAULT_OUT = Path(tempfile.gettempdir()) / "cnn-lab-build"


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="build.py", description="Build the cnn-lab one-folder app with PyInstaller."
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"folder for dist/ and work/ (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--windowed",
        action="store_true",
        help="no console window on Windows/macOS (the headless commands then print nothing)",
    )
    parser.add_argument(
        "--keep-work", action="store_true", help="reuse the work folder instead of cleaning it"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import PyInstaller.__main__ as pyinstaller
    except ImportError:
        sys.stderr.write("PyInstaller is not installed: pip install 'cnn-lab[packaging]'\n")
        return 1
    out = args.out.resolve()
    dist, work = out / "dist", out / "work"
    if args.windowed:
        os.environ["CNN_LAB_WINDOWED"] = "1"
    command = [str(SPEC), "--noconfirm", "--distpath", str(dist), "--workpath", str(work)]
    if not args.keep_work:
        command.append("--clean")
    started = time.monotonic()
    pyinstaller.run(command)
    seconds = time.monotonic() - started
    app = dist / "cnn-lab"
    size = folder_size(app) / 2**20
    print(f"built {app} in {seconds:.0f} s; {size:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
