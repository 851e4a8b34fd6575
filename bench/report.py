"""What every benchmark returns, and how `make bench` prints it."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchdrop_local.emulator import SeparateEmbeddedAws, environment_of
from batchdrop_local.streams import StreamReader, matches

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


def against_separate_aws(measure: Callable[[SeparateEmbeddedAws], list[Figure]]) -> list[Figure]:
    """Measure against an embedded AWS in a process of its own (its memory and CPU are not ours)."""
    aws = SeparateEmbeddedAws().start()
    try:
        with environment_of(aws):
            return measure(aws)
    finally:
        aws.stop()


def run_worker(
    aws: SeparateEmbeddedAws, function: str, environment: dict[str, str], events: list[dict[str, Any]]
) -> dict[str, Any]:
    """A function's handler over `events` in a process of its own (`bench.worker`): its figures."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.json"
        path.write_text(json.dumps(events))
        result = subprocess.run(
            [sys.executable, "-m", "bench.worker", function, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, **aws.environment(), **environment},
        )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def outbox(aws: SeparateEmbeddedAws, stack: Any) -> StreamReader:
    """A reader of the records table's stream (the outbox), as the publish function's event source."""
    return StreamReader(aws, stack.functions["PublishFunction"].events["Outbox"]["Properties"]["Stream"])


def tell_in_own_process(aws: SeparateEmbeddedAws, stack: Any, reader: StreamReader, batch: int = 100) -> dict[str, Any]:
    """The publish function over the changes the stream holds past `reader`'s place (what the benchmarked
    handler recorded), in batches as its event source mapping hands them over, in a process of its own."""
    function = stack.functions["PublishFunction"]
    filters = function.events["Outbox"]["Properties"].get("FilterCriteria", {}).get("Filters", [])
    records = [record for record in reader.read() if matches(record, filters)]
    events = [{"Records": records[start : start + batch]} for start in range(0, len(records), batch)]
    figures = run_worker(aws, "publish", function.environment, events)
    return {**figures, "changes": len(records)}
