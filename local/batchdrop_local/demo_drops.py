"""What the demo drops and what it expects of each: the example specs (and one bad one), each a
`Drop` with the status the scenario expects of its run, and the scenario's reruns (`batchdrop rerun`
of a run, once it has ended), which must also reuse and submit the steps the scenario names."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from batchdrop.spec.parse import parse_spec
from batchdrop.store.records import JobRecord, RunRecord
from batchdrop_local.batch_fates import Rerun, Scenario

ROOT = Path(__file__).resolve().parents[2]
DROPS = [*sorted((ROOT / "examples" / "specs").iterdir()), ROOT / "examples" / "demo" / "typo-in-gpus.yaml"]
FINISHED = {"succeeded", "failed", "rejected", "cancelled"}


@dataclass
class Drop:
    file: Path
    team: str
    key: str
    """Its S3 key; for a rerun, empty until `batchdrop rerun` has dropped its request."""
    expected: str
    spec: str = ""
    """The spec's name (its file name, for a spec that cannot be read)."""
    rerun: Rerun | None = None
    """For a rerun of the run of `file`: what the scenario expects of it."""
    rerun_of: str | None = None
    """The run id it reruns, once the request is dropped."""
    problem: str | None = None
    """Why the rerun could not be made, in words."""

    @property
    def name(self) -> str:
        """Its row in the demo: the file's name, and `(rerun)` for a rerun."""
        return f"{self.file.name} (rerun)" if self.rerun else self.file.name

    def expected_outcome(self) -> str:
        """The run's status the scenario expects; for a rerun, with the steps it reuses and submits."""
        if self.rerun is None:
            return self.expected
        return "; ".join(
            [self.expected]
            + ([f"reused {', '.join(self.rerun.reused)}"] if self.rerun.reused else [])
            + ([f"submitted {', '.join(self.rerun.submitted)}"] if self.rerun.submitted else [])
        )

    def outcome(self, run: RunRecord | None) -> str:
        """What happened, in the words of `expected_outcome`."""
        if run is None:
            return self.problem or "never seen"
        if self.rerun is None:
            return run.status
        reused = [job.step for job in run.jobs if job.reused_from]
        submitted = [job.step for job in run.jobs if not job.reused_from]
        return "; ".join(
            [run.status]
            + ([f"reused {', '.join(reused) or 'nothing'}"] if self.rerun.reused or reused else [])
            + ([f"submitted {', '.join(submitted) or 'nothing'}"] if self.rerun.submitted or submitted else [])
        )

    def as_expected(self, run: RunRecord | None) -> bool:
        """It ended as expected; a rerun resumes the run it reran, and reuses that run's own jobs."""
        if self.rerun is not None and (
            run is None
            or run.resumes != self.rerun_of
            or any(job.reused_from not in {None, self.rerun_of} for job in run.jobs)
        ):
            return False
        return self.outcome(run) == self.expected_outcome()


@dataclass
class Snapshot:
    runs: dict[str, RunRecord] = field(default_factory=dict)
    """By drop name (its file name, with `(rerun)` for a rerun)."""
    jobs: dict[str, list[JobRecord]] = field(default_factory=dict)
    """By drop name: the jobs of its run (a rerun's: those it submitted, not those it reused)."""

    def settled(self, drops: list[Drop]) -> bool:
        return all(
            drop.problem or (drop.name in self.runs and self.runs[drop.name].status in FINISHED) for drop in drops
        )

    def as_expected(self, drops: list[Drop]) -> bool:
        return all(drop.as_expected(self.runs.get(drop.name)) for drop in drops)


class UnknownDrop(ValueError):
    def __init__(self, names: set[str]) -> None:
        known = ", ".join(file.name for file in DROPS)
        super().__init__(f"no such demo spec: {', '.join(sorted(names))} (the demo's specs: {known})")


def check_only(only: Sequence[str]) -> None:
    """`UnknownDrop` unless every name is one of the demo's specs (by file name)."""
    unknown = set(only) - {file.name for file in DROPS}
    if unknown:
        raise UnknownDrop(unknown)


def plan_drops(scenario: Scenario, only: Sequence[str] = ()) -> list[Drop]:
    """Every demo spec, or only those named (by file name)."""
    check_only(only)
    drops = []
    for file in DROPS:
        if only and file.name not in only:
            continue
        team, name = "vision", file.name
        with contextlib.suppress(Exception):  # a bad spec still goes to its team's folder
            parsed = parse_spec(file.read_bytes(), file.name)
            team, name = parsed.spec.team or team, parsed.spec.name
        if file.name.startswith("typo"):
            team = "vision"
        expected = scenario.expected.get(name) or scenario.expected.get(file.name, "succeeded")
        drops.append(Drop(file=file, team=team, key=f"incoming/{team}/{file.name}", expected=expected, spec=name))
    return drops


def plan_reruns(scenario: Scenario, drops: list[Drop]) -> list[Drop]:
    """The scenario's reruns of the runs of these drops (a rerun of a spec not dropped is not made)."""
    by_spec = {drop.spec: drop for drop in drops}
    return [
        Drop(file=drop.file, team=drop.team, key="", expected=rerun.expected, spec=drop.spec, rerun=rerun)
        for rerun in scenario.reruns
        if (drop := by_spec.get(rerun.spec)) is not None
    ]
