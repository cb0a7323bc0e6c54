"""Before the window opens on Linux: are the X libraries Qt's xcb platform plugin needs there?

Without them Qt aborts with "Could not load the Qt platform plugin "xcb"", which does not say
what to install. This check runs before any Qt import and names the packages instead. It
imports nothing from Qt or torch, so the window's startup stays as fast as before.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

XCB_LIBRARIES: dict[str, tuple[str, str]] = {
    # soname: (Debian/Ubuntu package, Fedora package). The sonames are what Qt 6's
    # plugins/platforms/libqxcb.so and lib/libQt6XcbQpa.so.6 list as NEEDED (readelf -d),
    # less Qt's own libraries and the C/C++ runtime.
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
}


def loads(soname: str) -> bool:
    """Whether the dynamic loader finds `soname` (and what it needs), as it will for Qt."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def xcb_would_be_used(environ: Mapping[str, str], system: str) -> bool:
    """Qt picks xcb: on Linux with an X display, unless a Wayland session or another platform."""
    if not system.startswith("linux") or not environ.get("DISPLAY"):
        return False
    forced = environ.get("QT_QPA_PLATFORM", "").strip()
    if forced:  # "xcb", "xcb:option=value", "wayland;xcb": the first one is tried first
        return forced.split(";")[0].split(":")[0].strip() == "xcb"
    return not environ.get("WAYLAND_DISPLAY")


def install_commands(missing: list[str]) -> tuple[str, str]:
    """The Debian/Ubuntu and the Fedora install line for these sonames, each package once."""
    debian = dict.fromkeys(XCB_LIBRARIES[soname][0] for soname in missing)
    fedora = dict.fromkeys(XCB_LIBRARIES[soname][1] for soname in missing)
    return (
        "sudo apt-get install " + " ".join(debian),
        "sudo dnf install " + " ".join(fedora),
    )


def xcb_problem(
    environ: Mapping[str, str] | None = None,
    system: str | None = None,
    loader: Callable[[str], bool] | None = None,
) -> str | None:
    """The message to print instead of Qt's abort, or None when the window can try to open."""
    environ = os.environ if environ is None else environ
    system = sys.platform if system is None else system
    if not xcb_would_be_used(environ, system):
        return None
    loader = loads if loader is None else loader
    missing = [soname for soname in XCB_LIBRARIES if not loader(soname)]
    if not missing:
        return None
    debian, fedora = install_commands(missing)
    return (
        "cnn-lab cannot open its window: Qt's X11 (xcb) platform needs system libraries that "
        f"are not installed ({', '.join(missing)}).\n"
        f"On Debian or Ubuntu:  {debian}\n"
        f"On Fedora:            {fedora}\n"
        "Then run cnn-lab again. Commands such as `cnn-lab train` work without them.\n"
    )
