"""Quantities as people read them."""

from __future__ import annotations


def number(value: float) -> str:
    """8.0 -> "8", 0.5 -> "0.5"."""
    return str(int(value)) if float(value).is_integer() else str(value)


def gib(mib: int) -> str:
    """61440 -> "60 GiB"."""
    return f"{round(mib / 1024, 1):g} GiB"
