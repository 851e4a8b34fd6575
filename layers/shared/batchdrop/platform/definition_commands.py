"""What a sweep without `command` wraps: its job definition's own command (docs/sweeps.md).

Only Batch knows a job definition's command. The submit function reads the ones a spec needs
(`definitions_to_read`) and hands them to planning as `DefinitionCommand`s; offline (`plan`,
`validate`) planning wraps a placeholder instead and says so. Pure: no AWS here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from batchdrop.platform.config import PlatformConfig
from batchdrop.spec.model import Finding, JobDraft
from batchdrop.spec.parse import ParsedSpec


@dataclass(frozen=True)
class DefinitionCommand:
    """A job definition's own command, as Batch describes it: what a sweep without `command` wraps."""

    command: tuple[str, ...] | None
    why_none: str = ""
    """When `command` is None: why there is none to wrap, as the end of a sentence (`has no command: …`)."""


def definition_placeholder(definition_arn: str) -> str:
    """What an offline plan shows for a job definition's command, which only Batch knows."""
    return f"<command of job definition {definition_arn.rsplit('/', 1)[-1]}>"


def definitions_to_read(parsed: ParsedSpec, *, team: str, config: PlatformConfig) -> list[str]:
    """The job definitions (as the platform config names them) whose own command a sweep of this spec
    wraps: the `definition_commands` that `plan_run` needs to plan it exactly."""
    team_config = config.teams.get(team)
    wanted = (
        team_config.job_definitions.get(draft.job_definition)
        for draft in parsed.jobs
        if team_config is not None and draft.settings.sweep and draft.settings.command is None
    )
    return list(dict.fromkeys(arn for arn in wanted if arn is not None))


def command_to_wrap(
    draft: JobDraft,
    definition_arn: str,
    known: Mapping[str, DefinitionCommand] | None,
    label: str,
    warnings: list[str],
) -> tuple[Sequence[str], None] | tuple[None, Finding]:
    """The job definition's command that a sweep without `command` wraps, or the problem that it has none."""
    if known is None:
        placeholder = definition_placeholder(definition_arn)
        warnings.append(
            f"{label}: the sweep wraps the command of job definition `{draft.job_definition}`, which batchdrop "
            f"reads from Batch when the file is dropped; this plan shows {placeholder} in its place"
        )
        return [placeholder], None
    found = known[definition_arn]
    if found.command is None:
        return None, (
            draft.where("sweep"),
            "sweep_definition_command",
            f"{label} sweeps without `command`, so batchdrop would wrap the command of job definition "
            f"`{draft.job_definition}` ({definition_arn.rsplit('/', 1)[-1]}), but that definition {found.why_none}; "
            "give `command` in the spec",
        )
    return found.command, None
