"""Routing and planning: from (spec, team, platform config) to the exact SubmitJob requests.

This is a pure function of its inputs: no AWS, no clock. The routing invariants
of docs/spec.md are enforced here whatever the config says: a job with GPUs
lands only on a gpu queue, a job without GPUs never on one, and a job larger
than its queue's largest instance is refused (it would sit RUNNABLE forever).
Batch's own limits are checked here too, before any call is made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from batchdrop.errors import SpecRejected, cut
from batchdrop.platform.batch_limits import batch_limit_violations
from batchdrop.platform.config import PlatformConfig, QueueConfig, QueuePrice, Route, TeamConfig
from batchdrop.platform.costs import queue_prices
from batchdrop.platform.definition_commands import DefinitionCommand, definition_to_submit
from batchdrop.platform.fingerprints import step_hashes
from batchdrop.platform.identity import job_name
from batchdrop.platform.multinode import definition_findings, fit_findings, multinode_queue, node_request
from batchdrop.platform.recovery import RecoveryPolicy, policy_for, retry_strategy
from batchdrop.spec import sweep as sweeps
from batchdrop.spec.documents import Document
from batchdrop.spec.model import (
    Finding,
    Hardware,
    JobDraft,
    Resources,
)
from batchdrop.spec.parse import ParsedSpec, parse_spec
from batchdrop.units import gib, number

_PLACEHOLDER_JOB_ID = "00000000-0000-0000-0000-000000000000"
"""Stands in for a dependency's job id when measuring a request: ids are UUIDs."""


class PlannedJob(BaseModel):
    """One Batch job of a run, with the request that submits it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    step: str
    job_name: str
    queue: str
    queue_arn: str
    hardware: Hardware
    job_definition: str
    job_definition_arn: str
    resources: Resources
    depends_on: list[str]
    """Steps this job waits for; their job ids are known only at submission."""
    array_size: int | None = None
    nodes: int | None = None
    """A multi-node parallel job's nodes, each with `resources`."""
    sweep: dict[str, list[str]] | None = None
    """Axes of the sweep; child i runs with `batchdrop.spec.sweep.child_values(sweep, i)`."""
    request: dict[str, Any]
    """SubmitJob's arguments, all but `dependsOn`."""
    recovery: RecoveryPolicy | None = None
    """What batchdrop may resubmit it as, when its spec's `retries` asks (platform.recovery)."""
    content_hash: str = ""
    """What decides its outcome, and its upstream steps' hashes (platform.fingerprints; docs/resume.md)."""

    def submit_request(self, job_ids: Mapping[str, str]) -> dict[str, Any]:
        """The complete SubmitJob request, given the job ids of the steps this one depends on."""
        if not self.depends_on:
            return dict(self.request)
        return {**self.request, "dependsOn": [{"jobId": job_ids[step]} for step in self.depends_on]}


class Plan(BaseModel):
    """Every job one spec file becomes, in the order they must be submitted."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    run_id: str
    spec_name: str
    team: str
    environment: str
    notify_on: list[str]
    jobs: list[PlannedJob]
    warnings: list[str]
    prices: dict[str, QueuePrice] = Field(default_factory=dict, exclude=True)
    """Each priced queue's unit prices, by name: the submitter records a job's on it (platform.costs). Not
    shown in a plan: they are the platform's, not the spec's."""


def check_and_plan(
    raw: bytes,
    filename: str,
    *,
    team: str,
    config: PlatformConfig,
    run_id: str,
    definition_commands: Mapping[str, DefinitionCommand] | None = None,
) -> Plan:
    """Validate a spec file and plan it; `SpecRejected` lists every problem, with lines."""
    return plan_run(
        parse_spec(raw, filename), team=team, config=config, run_id=run_id, definition_commands=definition_commands
    )


def plan_run(
    parsed: ParsedSpec,
    *,
    team: str,
    config: PlatformConfig,
    run_id: str,
    definition_commands: Mapping[str, DefinitionCommand] | None = None,
) -> Plan:
    """Route every job of a valid spec and build its SubmitJob request.

    `definition_commands` holds the command of every job definition in
    `definition_commands.definitions_to_read` (the submit function reads them from Batch). Without it
    (offline: `plan`, `validate`), a sweep without `command` wraps a placeholder and the plan's warnings
    say so.
    """
    spec, document = parsed.spec, parsed.document
    findings: list[Finding] = []
    if spec.team is not None and spec.team != team:
        findings.append(
            (
                ("team",),
                "wrong_team",
                f"this file belongs to team `{cut(team)}` (its folder) but says team: {spec.team}; "
                "a file runs only as the team of its folder",
            )
        )
    team_config = config.teams.get(team)
    if team_config is None:
        teams = ", ".join(config.teams)
        findings.append(
            (("team",), "unknown_team", f"team `{cut(team)}` is not in the platform config (teams: {teams})")
        )
        raise _rejected(document, findings)
    if spec.environment not in team_config.environments:
        findings.append(
            (
                ("environment",),
                "environment_not_allowed",
                f"team `{team}` may not run `{spec.environment}` jobs (allowed: {', '.join(team_config.environments)})",
            )
        )
    jobs: list[PlannedJob] = []
    warnings: list[str] = []
    for draft in parsed.jobs:
        job_findings, job_warnings, planned = _plan_job(
            draft,
            spec_name=spec.name,
            environment=spec.environment,
            team=team,
            team_config=team_config,
            config=config,
            run_id=run_id,
            definition_commands=definition_commands,
        )
        findings.extend(job_findings)
        warnings.extend(job_warnings)
        if planned is not None:
            jobs.append(planned)
    if findings:
        raise _rejected(document, findings)
    hashes = step_hashes([(job.step, job.request, job.depends_on) for job in jobs])
    jobs = [job.model_copy(update={"content_hash": hashes[job.step]}) for job in jobs]
    return Plan(
        run_id=run_id,
        spec_name=spec.name,
        team=team,
        environment=spec.environment,
        notify_on=list(spec.notify.on) if spec.notify else [],
        jobs=jobs,
        warnings=warnings,
        prices=queue_prices(config),
    )


def _rejected(document: Document, findings: list[Finding]) -> SpecRejected:
    return SpecRejected(document.problems(findings))


def matching_route(config: PlatformConfig, team: str, environment: str, hardware: Hardware) -> Route | None:
    """The first route that takes the job, or None."""
    for candidate in config.routes:
        if candidate.when.matches(team, environment, hardware):
            return candidate
    return None


def _plan_job(
    draft: JobDraft,
    *,
    spec_name: str,
    environment: str,
    team: str,
    team_config: TeamConfig,
    config: PlatformConfig,
    run_id: str,
    definition_commands: Mapping[str, DefinitionCommand] | None,
) -> tuple[list[Finding], list[str], PlannedJob | None]:
    findings: list[Finding] = []
    warnings: list[str] = []
    settings, resources = draft.settings, draft.resources
    label = f"step `{draft.step}`" if draft.loc else "the job"
    definition_arn = team_config.job_definitions.get(draft.job_definition)
    if definition_arn is None:
        findings.append(
            (
                draft.where("job_definition"),
                "unknown_job_definition",
                f"team `{team}` has no job definition `{draft.job_definition}` "
                f"(it has: {', '.join(team_config.job_definitions)})",
            )
        )
    findings.extend(definition_findings(draft, team, team_config))
    matched = matching_route(config, team, environment, resources.hardware)
    queue_name = matched.queue if matched else None
    kind: str = resources.hardware
    if settings.nodes is not None:  # multi-node: on-demand only
        queue_name, kind = multinode_queue(config, team, environment, resources.hardware), f"multi-node {kind}"
    queue = config.queues.get(queue_name) if queue_name else None
    if queue_name is None or queue is None:
        findings.append(
            (
                draft.where("resources"),
                "no_route",
                f"no {'on-demand ' if settings.nodes else ''}queue takes {kind} jobs of team `{team}` in "
                f"`{environment}`; ask the platform team to add a route",
            )
        )
        return findings, warnings, None
    findings.extend(_fit_findings(draft, queue_name, queue) or fit_findings(draft, queue_name, queue))
    timeout_minutes = settings.timeout_minutes or config.defaults.timeout_minutes
    if timeout_minutes is None and team_config.needs_timeouts:
        why = "has a budget" if team_config.budget is not None else "requires one"
        findings.append(
            (
                draft.loc,
                "timeout_required",
                f"{label} has no timeout and team `{team}` {why}: a job without one cannot be bounded; "
                "set `timeout_minutes`, or ask the platform team for a default (`defaults.timeout_minutes`)",
            )
        )
    fair_share = queue.fair_share
    if fair_share and team_config.share_identifier is None:
        findings.append(
            (
                draft.loc,
                "missing_share_identifier",
                f"queue `{queue_name}` is fair-share and team `{team}` has no share_identifier in the platform config",
            )
        )
    if settings.priority is not None and not fair_share:
        warnings.append(f"{label}: `priority` is ignored: queue `{queue_name}` is not fair-share")
    recovery, recovery_findings = _recovery_policy(draft, queue, matched.fallback if matched else None, config)
    findings.extend(recovery_findings)
    if findings or definition_arn is None:
        return findings, warnings, None
    submitted = definition_to_submit(draft, definition_arn, definition_commands, label)  # and a wrapped command, pinned
    warnings += [submitted.warning] if submitted.warning else []
    if submitted.problem is not None:
        return [submitted.problem], warnings, None
    name = job_name(spec_name, draft.step, run_id)
    request = build_request(
        draft,
        name=name,
        queue=queue,
        definition_arn=submitted.definition_arn,
        tags={
            "batchdrop:team": team,
            "batchdrop:run-id": run_id,
            "batchdrop:environment": environment,
            "batchdrop:step": draft.step,
            **(settings.tags or {}),
        },
        environment={"BATCHDROP_RUN_ID": run_id, "BATCHDROP_STEP": draft.step, "BATCHDROP_TEAM": team},
        share=(team_config.share_identifier, team_config.default_priority) if fair_share else None,
        definition_command=submitted.command,
        timeout_minutes=timeout_minutes,
    )
    measured = {**request, "dependsOn": [{"jobId": _PLACEHOLDER_JOB_ID}] * len(draft.depends_on)}
    for message in batch_limit_violations(measured):
        findings.append((draft.loc, "batch_limit", f"{label}: {message}"))
    if findings:
        return findings, warnings, None
    return (
        findings,
        warnings,
        PlannedJob(
            step=draft.step,
            job_name=name,
            queue=queue_name,
            queue_arn=queue.arn,
            hardware=queue.hardware,
            job_definition=draft.job_definition,
            job_definition_arn=submitted.definition_arn,
            resources=resources,
            depends_on=list(draft.depends_on),
            array_size=draft.array_size,
            nodes=settings.nodes.count if settings.nodes else None,
            sweep={axis: list(values) for axis, values in settings.sweep.items()} if settings.sweep else None,
            request=request,
            recovery=recovery,
        ),
    )


def _recovery_policy(
    draft: JobDraft, queue: QueueConfig, fallback_name: str | None, config: PlatformConfig
) -> tuple[RecoveryPolicy | None, list[Finding]]:
    """The job's recovery policy, or why the spec asks for one its route cannot give."""
    retries = draft.settings.retries
    if retries is None or (retries.out_of_memory is None and retries.spot_fallback is None):
        return None, []
    fallback = config.queues.get(fallback_name) if fallback_name else None
    if retries.spot_fallback is not None:
        where = (*draft.where("retries"), "spot_fallback")
        if fallback_name is None or fallback is None:
            return None, [
                (
                    where,
                    "no_fallback_queue",
                    "the route of this job has no `fallback` queue to fall back to; "
                    "ask the platform team to add one, or leave out spot_fallback",
                )
            ]
        findings = [
            (where, code, f"on fallback queue `{fallback_name}`: {message}")
            for _, code, message in _fit_findings(draft, fallback_name, fallback)
        ]
        if findings:
            return None, findings
    return policy_for(retries, queue, fallback_name if retries.spot_fallback else None, fallback), []


def _fit_findings(draft: JobDraft, queue_name: str, queue: QueueConfig) -> list[Finding]:
    """The invariants between a job and the queue it was routed to."""
    resources = draft.resources
    where = draft.where("resources")
    findings: list[Finding] = []
    if resources.hardware != queue.hardware:
        wanted = f"{resources.gpus} GPU(s)" if resources.gpus else "no GPU"
        findings.append(
            (
                (*where, "gpus"),
                "hardware_mismatch",
                f"asks for {wanted} but the routes send it to {queue.hardware} queue `{queue_name}`; "
                f"{resources.hardware.upper()} jobs run only on {resources.hardware} queues",
            )
        )
        return findings
    if resources.vcpus > queue.max_vcpus:
        findings.append(
            (
                (*where, "vcpus"),
                "exceeds_queue",
                f"asks for {number(resources.vcpus)} vCPUs; the largest instance of queue `{queue_name}` "
                f"has {number(queue.max_vcpus)}",
            )
        )
    if resources.memory_mib > queue.max_memory_mib:
        findings.append(
            (
                (*where, "memory_mib"),
                "exceeds_queue",
                f"asks for {_gib(resources.memory_mib)} of memory; the largest instance of queue `{queue_name}` "
                f"has {_gib(queue.max_memory_mib)}",
            )
        )
    if resources.gpus > queue.max_gpus:
        findings.append(
            (
                (*where, "gpus"),
                "exceeds_queue",
                f"asks for {resources.gpus} GPUs; the largest instance of queue `{queue_name}` has {queue.max_gpus}",
            )
        )
    return findings


def _gib(mib: int) -> str:
    return f"{gib(mib)} ({mib:,} MiB)"


def build_request(
    draft: JobDraft,
    *,
    name: str,
    queue: QueueConfig,
    definition_arn: str,
    tags: dict[str, str],
    environment: dict[str, str],
    share: tuple[str | None, int] | None,
    definition_command: Sequence[str] | None = None,
    timeout_minutes: int | None = None,
) -> dict[str, Any]:
    """SubmitJob's arguments for one job, all but `dependsOn`. A sweep wraps the spec's command or, when
    it has none, `definition_command` (the job definition's own). `timeout_minutes`: the step's, or the
    platform's default (the spec's when not given)."""
    settings, resources = draft.settings, draft.resources
    overrides: dict[str, Any] = {}
    own = settings.command or definition_command
    command = list(own) if own else None
    if command is not None and draft.array_size is not None:  # every child is told BATCHDROP_CHILD_INDEX
        command = sweeps.wrap_command(command, settings.sweep or {})
    if command is not None:
        overrides["command"] = command
    variables = {**(settings.env or {}), **environment}
    overrides["environment"] = [{"name": key, "value": value} for key, value in variables.items()]
    requirements = [
        {"type": "VCPU", "value": number(resources.vcpus)},
        {"type": "MEMORY", "value": str(resources.memory_mib)},
    ]
    if resources.gpus:
        requirements.append({"type": "GPU", "value": str(resources.gpus)})
    overrides["resourceRequirements"] = requirements
    request: dict[str, Any] = {
        "jobName": name,
        "jobQueue": queue.arn,
        "jobDefinition": definition_arn,
        "containerOverrides": overrides,
    }
    if settings.parameters:
        request["parameters"] = dict(settings.parameters)
    if draft.array_size is not None:
        request["arrayProperties"] = {"size": draft.array_size}
    if settings.retries is not None and (strategy := retry_strategy(settings.retries)) is not None:
        request["retryStrategy"] = strategy
    timeout_minutes = timeout_minutes or settings.timeout_minutes
    if timeout_minutes is not None:
        request["timeout"] = {"attemptDurationSeconds": timeout_minutes * 60}
    request["tags"] = tags
    request["propagateTags"] = True
    if share is not None:
        identifier, default_priority = share
        request["shareIdentifier"] = identifier
        request["schedulingPriorityOverride"] = settings.priority if settings.priority is not None else default_priority
    return node_request(request, settings.nodes.count) if settings.nodes else request
