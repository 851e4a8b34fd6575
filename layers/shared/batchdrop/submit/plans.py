"""Planning a spec as the submit function does, for a drop and for a recovery alike: the job definitions'
commands a sweep without `command` wraps are read from Batch first, so the plan is exact."""

from __future__ import annotations

from batchdrop.platform.config import PlatformConfig
from batchdrop.platform.definition_commands import definitions_to_read
from batchdrop.platform.planning import Plan, plan_run
from batchdrop.spec.parse import ParsedSpec
from batchdrop.submit.ports import JobSubmitter


def plan_for_submission(
    parsed: ParsedSpec, *, team: str, run_id: str, config: PlatformConfig, batch: JobSubmitter
) -> Plan:
    """`plan_run` with the definition commands read from Batch. Raises `SpecRejected` for a spec that
    cannot run, and Batch's errors when it cannot be read (the caller's message is retried)."""
    commands = {
        definition: batch.definition_command(definition)
        for definition in definitions_to_read(parsed, team=team, config=config)
    }
    return plan_run(parsed, team=team, config=config, run_id=run_id, definition_commands=commands)
