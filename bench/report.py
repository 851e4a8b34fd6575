"""What every benchmark returns, and how `make bench` prints it."""

from __future__ import annotations

import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    target: str = ""
    within: bool | None = None
    detail: str = ""

    def line(self) -> str:
        mark = {True: "✓", False: "✗", None: " "}[self.within]
        target = f"  (target {self.target})" if self.target else ""
        detail = f"  — {self.detail}" if self.detail else ""
        number = f"{self.value:,.0f}" if abs(self.value) >= 100 else f"{self.value:.3g}"
        return f"  {mark} {self.name}: {number} {self.unit}{target}{detail}"


def median_seconds_of_python(code: str, runs: int, env: dict[str, str] | None = None) -> list[float]:
    """Run `code` in fresh interpreters; it prints seconds (one float per line per run)."""
    samples: list[list[float]] = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=ROOT
        ).stdout.split()
        samples.append([float(value) for value in out])
    return [statistics.median(column) for column in zip(*samples, strict=True)]
