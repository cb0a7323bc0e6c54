"""On Linux without the X libraries Qt's xcb plugin needs, cnn-lab says what to install.

The detection runs against a planted loader and environment (no X server needed); one test runs
the real check on this machine in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cnn_lab.app import main as app_main
from cnn_lab.app import platform_check
from cnn_lab.app.platform_check import XCB_LIBRARIES, xcb_problem

X11 = {"DISPLAY": ":0"}
QT_ABORT = "Could not load the Qt platform plugin"


def _loader(missing: set[str]):
    return lambda soname: soname not in missing


def _install_lines(message: str) -> tuple[str, str]:
    debian = next(line for line in message.splitlines() if "apt-get install" in line)
    fedora = next(line for line in message.splitlines() if "dnf install" in line)
    return debian, fedora


def test_missing_libraries_name_exactly_their_debian_and_fedora_packages() -> None:
    missing = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0"}
    message = xcb_problem(X11, "linux", _loader(missing))
    assert message is not None
    debian, fedora = _install_lines(message)
    assert debian.split("apt-get install ")[1].split() == [
        "libxcb-cursor0",
        "libxcb-icccm4",
        "libxcb-keysyms1",
    ]
    assert fedora.split("dnf install ")[1].split() == [
        "xcb-util-cursor",
        "xcb-util-wm",
        "xcb-util-keysyms",
    ]
    assert all(soname in message for soname in missing)


def test_a_package_behind_two_missing_libraries_is_named_once() -> None:
    message = xcb_problem(X11, "linux", _loader({"libxcb-shape.so.0", "libxcb-shm.so.0"}))
    assert message is not None
    debian, fedora = _install_lines(message)
    assert debian.endswith("apt-get install libxcb-shape0 libxcb-shm0")
    assert fedora.endswith("dnf install libxcb")


def test_every_library_has_both_package_names() -> None:
    for soname, (debian, fedora) in XCB_LIBRARIES.items():
        assert soname.startswith("lib") and ".so." in soname
        assert debian and fedora and " " not in debian + fedora


def test_all_libraries_present_is_no_message() -> None:
    assert xcb_problem(X11, "linux", _loader(set())) is None
    assert xcb_problem({**X11, "QT_QPA_PLATFORM": "xcb"}, "linux", _loader(set())) is None


@pytest.mark.parametrize(
    ("environ", "system"),
    [
        ({**X11, "QT_QPA_PLATFORM": "offscreen"}, "linux"),
        ({**X11, "QT_QPA_PLATFORM": "wayland"}, "linux"),
        ({**X11, "WAYLAND_DISPLAY": "wayland-0"}, "linux"),
        ({}, "linux"),  # no display at all: not a missing library
        ({"QT_QPA_PLATFORM": "xcb"}, "linux"),
        (X11, "darwin"),
        (X11, "win32"),
    ],
)
def test_no_check_where_qt_would_not_use_xcb(environ: dict[str, str], system: str) -> None:
    def loader(soname: str) -> bool:
        raise AssertionError(f"looked for {soname}")

    assert xcb_problem(environ, system, loader) is None


@pytest.mark.parametrize("platform", ["xcb", " xcb ", "xcb:nograb", "xcb;offscreen"])
def test_forced_xcb_is_checked_even_in_a_wayland_session(platform: str) -> None:
    environ = {**X11, "WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": platform}
    assert xcb_problem(environ, "linux", _loader({"libxcb-cursor.so.0"})) is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb check is Linux's")
def test_main_prints_the_message_and_stops_before_qt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(platform_check, "loads", _loader({"libxkbcommon-x11.so.0"}))
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setenv("DISPLAY", ":99")

    def no_window(**_kwargs: object) -> int:
        raise AssertionError("the window was tried")

    monkeypatch.setattr("cnn_lab.app.gui.run_gui", no_window)
    assert app_main.main([]) != 0
    err = capsys.readouterr().err
    assert "apt-get install libxkbcommon-x11-0" in err
    assert "dnf install libxkbcommon-x11" in err


CHECK_HERE = """
import sys
from cnn_lab.app.platform_check import xcb_problem
problem = xcb_problem()
if problem:
    sys.stderr.write(problem)
    sys.exit(1)
"""


def test_the_real_check_on_this_machine_passes_or_names_the_install_line() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "DISPLAY": ":99"}
    env.pop("WAYLAND_DISPLAY", None)
    done = subprocess.run(
        [sys.executable, "-c", CHECK_HERE], capture_output=True, text=True, timeout=60, env=env
    )
    assert QT_ABORT not in done.stdout + done.stderr
    if done.returncode == 0:
        assert done.stderr == ""
    else:
        assert done.returncode == 1, done.stderr
        assert "sudo apt-get install " in done.stderr and "sudo dnf install " in done.stderr
        assert "Traceback" not in done.stderr
