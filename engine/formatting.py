"""Numbers as a person reads them, shared by messages, reports and the window."""

from __future__ import annotations


def format_bytes(n: int) -> str:
    """``1,234 bytes``, ``12.1 KiB``, ``3.4 MiB``, ``1.2 GiB`` (binary units, as disks show)."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
