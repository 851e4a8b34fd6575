"""What an array without `command` wraps: its job definition's own command (docs/sweeps.md).

Only Batch knows a job definition's command. The submit function reads the ones a spec needs
(`definitions_to_read`), the Batch gateway describes each and `command_of` says what of it a sweep can
wrap; planning wraps that command and submits the very revision it was read from (`definition_arn`),
so the command and the definition always match. Offline (`plan`, `validate`) planning wraps a
placeholder instead and says so. Pure: no AWS here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchdrop.platform.config import PlatformConfig
from batchdrop.spec.model import Finding, JobDraft
from batchdrop.spec.parse import ParsedSpec


@dataclass(frozen=True)
class DefinitionCommand:
    """A job definition's own command, as Batch describes it: what a sweep without `command` wraps."""

    command: tuple[str, ...] | None
    why_none: str = ""
    """When `command` is None: why there is none to wrap, as the end of a sentence (`has no command: …`)."""
    definition_arn: str | None = None
    """The revision the command was read from (its `jobDefinitionArn`): the one the sweep submits, so a
    revision registered since cannot run with another's command. None only for a stand-in not read from
    Batch; then the platform config's reference is submitted."""


def command_of(described: Mapping[str, Any] | None) -> DefinitionCommand:
    """What a sweep can wrap of a job definition as DescribeJobDefinitions tells it (None: Batch has
    none of that name): its container's command, or why there is none."""
    if described is None:
        return DefinitionCommand(None, "is not in Batch (no ACTIVE revision of that name)")
    if described.get("nodeProperties") or described.get("type") == "multinode":
        return DefinitionCommand(None, "is a multi-node parallel definition, whose commands are set per node")
    if described.get("ecsProperties"):
        return DefinitionCommand(None, "runs ECS task properties, not a single container's command")
    if described.get("eksProperties"):
        return DefinitionCommand(None, "runs an EKS pod, not a single container's command")
    command = (described.get("containerProperties") or {}).get("command") or []
    if not command:
        return DefinitionCommand(None, "has no command (its image's own CMD would run, which batchdrop cannot wrap)")
    return DefinitionCommand(tuple(str(argument) for argument in command), definition_arn=described["jobDefinitionArn"])


def definition_placeholder(definition_arn: str) -> str:
    """What an offline plan shows for a job definition's command, which only Batch knows."""
    return f"<command of job definition {definition_arn.rsplit('/', 1)[-1]}>"


def wraps_definition_command(draft: JobDraft) -> bool:
    """Whether this job is an array (a sweep or `array_size`) without `command`, which wraps its job
    definition's own: every array child runs in the prelude, so it is told its `BATCHDROP_CHILD_INDEX`."""
    return draft.array_size is not None and draft.settings.command is None


def definitions_to_read(parsed: ParsedSpec, *, team: str, config: PlatformConfig) -> list[str]:
    """The job definitions (as the platform config names them) whose own command a sweep of this spec
    wraps: the `definition_commands` that `plan_run` needs to plan it exactly."""
    team_config = config.teams.get(team)
    if team_config is None:
        return []
    return list(
        dict.fromkeys(
            arn
            for draft in parsed.jobs
            if wraps_definition_command(draft) and (arn := team_config.job_definitions.get(draft.job_definition))
        )
    )


@dataclass(frozen=True)
class DefinitionToSubmit:
    """The job definition a job submits and, for a sweep without `command`, the command it wraps."""

    definition_arn: str
    """For a wrapped command, the revision it was read from: the command and the definition match."""
    command: tuple[str, ...] | None = None
    problem: Finding | None = None
    """Why the job cannot be planned: its definition has no command to wrap."""
    warning: str | None = None


def definition_to_submit(
    draft: JobDraft, definition_arn: str, known: Mapping[str, DefinitionCommand] | None, label: str
) -> DefinitionToSubmit:
    """The definition (as the platform config names it) for a job that wraps none; for an array (a sweep
    or `array_size`) without `command`, the revision its command was read from and that command, or the
    problem that it has none. Offline (`known` None) a placeholder command, and the warning that says so."""
    if not wraps_definition_command(draft):
        return DefinitionToSubmit(definition_arn)
    kind = "sweep" if draft.settings.sweep else "array"
    if known is None:
        placeholder = definition_placeholder(definition_arn)
        warning = (
            f"{label}: the {kind} wraps the command of job definition `{draft.job_definition}`, which batchdrop "
            f"reads from Batch when the file is dropped; this plan shows {placeholder} in its place"
        )
        return DefinitionToSubmit(definition_arn, (placeholder,), warning=warning)
    found = known.get(definition_arn)
    if found is None:  # the caller's mistake, not the spec's: it read fewer than definitions_to_read
        raise ValueError(f"job definition {definition_arn} was not read: plan with every one of definitions_to_read")
    if found.command is None:
        problem = (
            draft.where(kind if kind == "sweep" else "array_size"),
            "sweep_definition_command",
            f"{label} is an array without `command`, so batchdrop would wrap the command of job definition "
            f"`{draft.job_definition}` ({definition_arn.rsplit('/', 1)[-1]}), but that definition "
            f"{found.why_none}; give `command` in the spec",
        )
        return DefinitionToSubmit(definition_arn, problem=problem)
    return DefinitionToSubmit(found.definition_arn or definition_arn, found.command)
