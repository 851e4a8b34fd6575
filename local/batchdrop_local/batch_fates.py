"""What the local Batch decides when an attempt ends: which fate the scenario gives a job (by its spec
and step, whatever recovery suffix its names carry; a `first_job_only` fate only the step's first
job), and whether Batch retries the attempt (the job's own `retryStrategy`, as AWS Batch reads it).
Pure, but for `keep_submitted_retry_strategies`: a bridge where moto is not Batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from batchdrop.spec.sweep import expand_indices

Outcome = Literal["succeed", "fail", "out_of_memory", "spot_reclaim"]
OUTCOMES = ("succeed", "fail", "out_of_memory", "spot_reclaim")
RECOVERY_SUFFIX = re.compile(r"-(r\d+|rc[0-9a-f]+)$")
"""What batchdrop's recovery may add to a resubmitted job's name, spec or step (`-r2`, `-rc3f9a`)."""
CHILD_INDICES = "BATCHDROP_CHILD_INDICES"


class ScenarioError(ValueError):
    """A scenario file that cannot be played, in words."""


@dataclass(frozen=True)
class JobFate:
    """What happens to one job (a step of a spec) in the scenario."""

    spec: str
    step: str = "main"
    outcome: Outcome = "succeed"
    exit_code: int = 1
    runs_for: float | None = None
    """Seconds it runs (at speed 1), where it is not the scenario's `running` time."""
    below_memory_mib: int | None = None
    """out_of_memory: only while the job asks for less memory than this (with enough, it succeeds)."""
    times: int = 1
    """spot_reclaim: how many attempts are reclaimed, counted over every job of this spec and step
    (per original array index), and only while the job runs on a spot queue."""
    fail_children: tuple[int, ...] | None = None
    """For an array job: the children (by original index) `outcome` applies to; the others succeed."""
    fail_node: int | None = None
    """For a multi-node job and outcome `fail`: the node that exits with `exit_code` (the others succeed); a
    node other than the main node takes the main node down with it (its training loses a peer: exit 1)."""
    first_job_only: bool = False
    """`outcome` only for the first job of this spec and step the local Batch runs; every later job of
    it (a rerun's, a recovery's) succeeds, so a `batchdrop rerun` of the failed run can succeed."""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ScenarioError(f"{self.spec}/{self.step}: outcome {self.outcome!r} is not one of {OUTCOMES}")
        if not isinstance(self.first_job_only, bool):
            raise ScenarioError(
                f"{self.spec}/{self.step}: first_job_only is true or false, not {self.first_job_only!r}"
            )
        if self.fail_children is not None:
            try:
                object.__setattr__(self, "fail_children", tuple(int(index) for index in self.fail_children))
            except (TypeError, ValueError) as error:
                raise ScenarioError(f"{self.spec}/{self.step}: fail_children is a list of indices") from error

    def outcome_of(self, child_index: int | None) -> Outcome:
        """The outcome for the job, or for its child at this original index."""
        if self.fail_children is not None and child_index is not None and child_index not in self.fail_children:
            return "succeed"
        return self.outcome


@dataclass(frozen=True)
class Rerun:
    """What the demo does once this spec's run has ended: `batchdrop rerun` of it, which must end
    `expected`, reusing the `reused` steps and submitting the `submitted` ones."""

    spec: str
    expected: str = "succeeded"
    reused: tuple[str, ...] = ()
    submitted: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("reused", "submitted"):
            steps = getattr(self, name)
            if isinstance(steps, str) or not all(isinstance(step, str) for step in steps):
                raise ScenarioError(f"rerun of {self.spec}: {name} is a list of step names, not {steps!r}")
            object.__setattr__(self, name, tuple(steps))


@dataclass
class Scenario:
    fates: list[JobFate] = field(default_factory=list)
    expected: dict[str, str] = field(default_factory=dict)
    """Spec name (or file name, for a spec that cannot be read) -> the run status it must end in."""
    seconds: dict[str, float] = field(default_factory=dict)
    """How long each phase takes at speed 1: queued, starting, running, child."""
    reruns: list[Rerun] = field(default_factory=list)
    _jobs_seen: dict[tuple[str, str], int] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Jobs given a `first_job_only` fate so far, by the fate's spec and step."""

    @classmethod
    def load(cls, path: Path) -> Scenario:
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ScenarioError(f"{path}: cannot be read as a scenario: {error}") from error
        if not isinstance(raw, dict):
            raise ScenarioError(f"{path}: a scenario is a mapping of fates, expected and seconds")
        return cls(
            fates=[JobFate(**each) for each in _entries(path, raw, "fates", JobFate)],
            expected=dict(raw.get("expected", {})),
            seconds=dict(raw.get("seconds", {})),
            reruns=[Rerun(**each) for each in _entries(path, raw, "reruns", Rerun)],
        )

    def fate(self, spec: str, step: str) -> JobFate:
        """The fate of this spec's step; a recovery suffix on either name is looked past. The local
        Batch asks once for each job it runs: a `first_job_only` fate counts them, and is the fate of
        the first job only (the later ones succeed)."""
        for candidate in dict.fromkeys(
            [(spec, step), (_base(spec), step), (spec, _base(step)), (_base(spec), _base(step))]
        ):
            for fate in self.fates:
                if (fate.spec, fate.step) == candidate:
                    return self._counted(fate)
        return JobFate(spec=spec, step=step)

    def _counted(self, fate: JobFate) -> JobFate:
        if not fate.first_job_only:
            return fate
        key = (fate.spec, fate.step)
        self._jobs_seen[key] = self._jobs_seen.get(key, 0) + 1
        return fate if self._jobs_seen[key] == 1 else JobFate(spec=fate.spec, step=fate.step)


def _entries(path: Path, raw: Mapping[str, Any], section: str, kind: type) -> list[dict[str, Any]]:
    """The scenario's `section` (a list of mappings with a spec and `kind`'s fields), checked."""
    known = {each.name for each in fields(kind) if not each.name.startswith("_")}
    entries = raw.get(section) or []
    if not isinstance(entries, list):
        raise ScenarioError(f"{path}: {section} is a list of mappings, not {entries!r}")
    for entry in entries:
        unknown = sorted(set(entry) - known) if isinstance(entry, dict) else ["(not a mapping)"]
        if unknown or "spec" not in entry:
            raise ScenarioError(
                f"{path}: {section[:-1]} {entry!r}: unknown {unknown} or no spec; fields are {sorted(known)}"
            )
    return list(entries)


def _base(name: str) -> str:
    return RECOVERY_SUFFIX.sub("", name)


def spec_and_step(described: Mapping[str, Any]) -> tuple[str, str]:
    """From the job's tags (`batchdrop:spec`, `batchdrop:step`) and, where no spec tag says it, its
    name (`<spec>-<step>-<run id>`, with any recovery suffix looked past)."""
    tags = described.get("tags") or {}
    step = tags.get("batchdrop:step", "main")
    if "batchdrop:spec" in tags:
        return str(tags["batchdrop:spec"]), str(step)
    name = _base(described["jobName"])
    run_id = tags.get("batchdrop:run-id", "")
    spec = name.removesuffix(f"-{run_id}").removesuffix(f"-{step}").removesuffix(f"-{_base(step)}")
    return spec, str(step)


# ---------------------------------------------------------------------------- Batch's retry rules


def _matches(pattern: str | None, value: str) -> bool:
    """A condition's glob: `*` may end it (the start must match exactly); absent, it always matches."""
    if pattern is None:
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def retry_action(
    strategy: Mapping[str, Any] | None, *, status_reason: str | None, reason: str | None, exit_code: int | None
) -> Literal["RETRY", "EXIT"]:
    """What Batch does with a failed attempt, by the job's `retryStrategy.evaluateOnExit`.

    As the AWS Batch API reference says (EvaluateOnExit, docs.aws.amazon.com/batch/latest/APIReference/
    API_EvaluateOnExit.html): an entry's action (RETRY or EXIT, either case) is taken when all of its
    conditions match; `onStatusReason`, `onReason` (the container's reason) and `onExitCode` (the exit
    code's decimal text) are globs that may end in `*`; entries are tried in order, the first that
    matches decides; when none matches, the job is retried. What an attempt lacks (a reclaimed
    attempt's exit code) is matched as empty text.
    """
    for entry in (strategy or {}).get("evaluateOnExit") or []:
        if (
            _matches(entry.get("onStatusReason"), status_reason or "")
            and _matches(entry.get("onReason"), reason or "")
            and _matches(entry.get("onExitCode"), "" if exit_code is None else str(exit_code))
        ):
            return "EXIT" if str(entry.get("action", "")).upper() == "EXIT" else "RETRY"
    return "RETRY"


def retried(strategy: Mapping[str, Any] | None, attempts_made: int, last_attempt: Mapping[str, Any]) -> bool:
    """Whether Batch starts another attempt after `last_attempt` (as it shows in `attempts`) failed."""
    if attempts_made >= int((strategy or {}).get("attempts", 1)):
        return False
    container = last_attempt.get("container", {})
    action = retry_action(
        strategy,
        status_reason=last_attempt.get("statusReason"),
        reason=container.get("reason"),
        exit_code=container.get("exitCode"),
    )
    return action == "RETRY"


# ---------------------------------------------------------------------------- what the job asked for


def child_indices(text: str) -> list[int]:
    """`3,7,10-14` -> [3, 7, 10, 11, 12, 13, 14]: a resubmitted array's children's original indices,
    by their new index, read as the prelude reads them (`batchdrop.spec.sweep.expand_indices`)."""
    try:
        return expand_indices(text)
    except ValueError as error:
        raise ScenarioError(str(error)) from error


def original_indices(job: Mapping[str, Any], size: int) -> list[int]:
    """The original index of each of this array job's children, by new index: from
    `BATCHDROP_CHILD_INDICES` in its environment when the array is a resubmission of some children,
    else each child's own index."""
    environment = {each["name"]: each["value"] for each in job.get("container", {}).get("environment", [])}
    if CHILD_INDICES not in environment:
        return list(range(size))
    mapped = child_indices(environment[CHILD_INDICES])
    if len(mapped) != size:
        raise ScenarioError(f"{CHILD_INDICES}={environment[CHILD_INDICES]!r} names {len(mapped)} children, not {size}")
    return mapped


def memory_mib(job: Mapping[str, Any]) -> int | None:
    """The memory the job asked for, as Batch shows it (the request's override, else the definition's)."""
    for requirement in job.get("container", {}).get("resourceRequirements", []):
        if requirement["type"] == "MEMORY":
            return int(requirement["value"])
    return None


def keep_submitted_retry_strategies() -> None:
    """BATCH RETRY STRATEGY. moto's SubmitJob drops the request's `retryStrategy` and its DescribeJobs
    shows none; Batch shows the request's (else the job definition's), and retries by it. In the
    emulator's process, moto keeps it on the job and shows it, and shows the `resourceRequirements`
    the request's `containerOverrides` gave (over the job definition's), as Batch does. Called again,
    it changes nothing.
    """
    from moto.batch.models import Job  # noqa: PLC0415  # only the emulator's process loads moto
    from moto.batch.responses import BatchResponse  # noqa: PLC0415

    if getattr(BatchResponse.submitjob, "keeps_retry_strategy", False):
        return
    submit, describe = BatchResponse.submitjob, Job.describe

    def submitjob(self: Any) -> str:
        body: str = submit(self)
        strategy = self._get_param("retryStrategy")
        job = self.batch_backend._jobs.get(json.loads(body)["jobId"])
        if strategy and job is not None:
            job.submitted_retry_strategy = strategy
        return body

    def described(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = describe(self)
        strategy = getattr(self, "submitted_retry_strategy", None) or self.job_definition.retry_strategy
        if strategy:
            result["retryStrategy"] = strategy
        container, properties = result.get("container"), self.job_definition.container_properties
        if container is not None and properties is not None:
            asked = {each["type"]: each for each in properties.get("resourceRequirements", [])}
            asked |= {each["type"]: each for each in self.container_overrides.get("resourceRequirements", [])}
            container["resourceRequirements"] = list(asked.values())
        return result

    submitjob.keeps_retry_strategy = True  # type: ignore[attr-defined]
    BatchResponse.submitjob = submitjob  # type: ignore[method-assign]
    Job.describe = described  # type: ignore[method-assign]
