"""Numbers as a person reads them, shared by messages, reports and the window."""

from __future__ import annotations

from collections.abc import Sequence


def format_bytes(n: int) -> str:
    """``1,234 bytes``, ``12.1 KiB``, ``3.4 MiB``, ``1.2 GiB`` (binary units, as disks show)."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_count(n: float) -> str:
    """``1,258`` below ten thousand, then ``12.3 K``, ``11.7 M``, ``4.1 G``, ``5.6 T``.

    Parameters and MACs at a glance, the same in the window and on the terminal.
    """
    if abs(n) < 10_000:
        return f"{n:,.0f}"
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,.0f}"


def format_shape(shape: Sequence[int]) -> str:
    """``[64, 16, 16]``: a tensor shape without its batch; ``—`` when there is none."""
    return "[" + ", ".join(str(d) for d in shape) + "]" if shape else "—"
