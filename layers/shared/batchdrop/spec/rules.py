"""The spec's rules beyond its types: nothing that chooses an image, a role or privileges; steps that
form a DAG; what a job asks of Batch within Batch's limits; sweeps that make a valid array. Each rule
yields findings (where, code, message), never more than a file's problem budget."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from batchdrop.errors import Loc, echo_list
from batchdrop.spec.model import (
    MAX_ARRAY_SIZE,
    MAX_DEPENDENCIES,
    MAX_ENV,
    MAX_PARAMETERS,
    MAX_TAGS,
    MIN_ARRAY_SIZE,
    RESERVED_ENV_PREFIXES,
    SINGLE_STEP,
    Finding,
    JobDraft,
    JobSettings,
    JobSpec,
    Step,
)

_SETTINGS = tuple(JobSettings.model_fields)
_MERGED_MAPS = {"parameters": MAX_PARAMETERS, "env": MAX_ENV, "tags": MAX_TAGS}
"""Maps a step merges over the top-level ones, each with its most entries (once merged too)."""
_NOT_DEFAULTS_WITH_STEPS = ("sweep", "array_size", "nodes")

_FORBIDDEN_WORDS = {
    "image": "the image is fixed by the job definition; choose a `job_definition` alias instead",
    "role": "the IAM role a job runs as is fixed by the job definition; a spec cannot choose it",
    "privileged": "privileged settings are fixed by the job definition; a spec cannot change them",
}
_FORBIDDEN_KEYS: dict[str, str] = {
    **dict.fromkeys(("image", "image_uri", "container_image", "imageUri", "docker_image"), "image"),
    **dict.fromkeys(
        (
            "role",
            "role_arn",
            "job_role",
            "job_role_arn",
            "jobRoleArn",
            "execution_role",
            "execution_role_arn",
            "executionRoleArn",
            "iam_role",
            "instance_role",
        ),
        "role",
    ),
    **dict.fromkeys(
        (
            "privileged",
            "user",
            "linux_parameters",
            "linuxParameters",
            "capabilities",
            "volumes",
            "mount_points",
            "mountPoints",
            "readonly_root_filesystem",
            "ulimits",
        ),
        "privileged",
    ),
}
_USER_MAPS = {"env", "parameters", "tags", "sweep"}
"""Mappings whose keys are the user's own names, not fields."""
_IAM_ARN = re.compile(r"arn:aws[a-z-]*:(iam|sts)::", re.IGNORECASE)
IAM_ARN_BYTES = re.compile(_IAM_ARN.pattern.encode(), re.IGNORECASE)


def forbidden_findings(data: Any, loc: Loc = ()) -> list[Finding]:
    """Fields a spec may never hold, each with the reason why."""
    findings: list[Finding] = []
    if isinstance(data, dict):
        for key, value in data.items():
            key_loc = (*loc, key)
            kind = _FORBIDDEN_KEYS.get(key) if not (loc and loc[-1] in _USER_MAPS) else None
            if kind is not None:
                findings.append((key_loc, "forbidden_field", f"`{key}` is not allowed: {_FORBIDDEN_WORDS[kind]}"))
            else:
                findings.extend(forbidden_findings(value, key_loc))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            findings.extend(forbidden_findings(item, (*loc, index)))
    return findings


def _iam_arn_findings(settings: JobSettings, loc: Loc) -> list[Finding]:
    """IAM ARNs in free text (command, parameters, env, tags, sweep); other fields cannot hold one."""
    texts: dict[Loc, str] = {(*loc, "command", i): text for i, text in enumerate(settings.command or ())}
    for name in ("parameters", "env", "tags"):
        texts.update({(*loc, name, key): text for key, text in (getattr(settings, name) or {}).items()})
    for axis, values in (settings.sweep or {}).items():
        texts.update({(*loc, "sweep", axis, i): text for i, text in enumerate(values)})
    if not _IAM_ARN.search("\n".join(texts.values())):
        return []  # the usual case, in one search
    return [
        (where, "iam_arn", "IAM ARNs are not allowed in a spec: the job definition decides which role a job runs as")
        for where, text in texts.items()
        if _IAM_ARN.search(text)
    ]


def resolve_jobs(spec: JobSpec) -> list[JobDraft]:
    """Every job of the spec with the top-level defaults applied, in the order written.

    Every value was validated with the spec, so a job's settings are the spec's (or its step's, with
    the defaults copied in), not validated again: validating the merged defaults anew cost a pass over
    every default, sweep values and all, for each step, and raised where a merge broke a limit. What
    only a merge can break is checked in `_check_job` instead.
    """
    defaults = {name: value for name in _SETTINGS if (value := spec.__dict__[name]) is not None}
    top_origins: dict[str, Loc] = {name: (name,) for name in defaults}
    if not spec.steps:
        return [
            JobDraft(
                step=SINGLE_STEP,
                loc=(),
                depends_on=(),
                settings=spec,
                origins=top_origins,
            )
        ]
    for name in _NOT_DEFAULTS_WITH_STEPS:
        defaults.pop(name, None)
        top_origins.pop(name, None)
    drafts = []
    for index, step in enumerate(spec.steps):
        own = {name: value for name in _SETTINGS if (value := step.__dict__[name]) is not None}
        values = {**defaults, **own}
        for name in _MERGED_MAPS:
            if name in own and name in defaults:
                values[name] = {**defaults[name], **own[name]}
        origins = {**top_origins, **{name: ("steps", index, name) for name in own}}
        drafts.append(
            JobDraft(
                step=step.name,
                loc=("steps", index),
                depends_on=tuple(step.depends_on),
                settings=step.model_copy(update=values),
                origins=origins,
            )
        )
    return drafts


def check_spec(spec: JobSpec, drafts: list[JobDraft], *, scan_text: bool = True) -> list[Finding]:
    """The rules that span fields: steps, dependencies, sweeps, names, free text (`scan_text`)."""
    findings: list[Finding] = _iam_arn_findings(spec, ()) if scan_text else []
    if spec.steps:
        for name in _NOT_DEFAULTS_WITH_STEPS:
            if getattr(spec, name) is not None:
                findings.append(
                    ((name,), "misplaced", f"with `steps`, put `{name}` on the step that needs it, not at the top")
                )
        findings.extend(_check_steps(spec.steps))
        for index, step in enumerate(spec.steps if scan_text else ()):
            findings.extend(_iam_arn_findings(step, ("steps", index)))
    for draft in drafts:
        findings.extend(_check_job(draft))
    if spec.rerun and spec.resume is None:
        findings.append((("rerun",), "rerun_without_resume", "`rerun` names steps of a run to resume: add `resume`"))
    steps = {draft.step for draft in drafts}
    for index, name in enumerate(spec.rerun or ()):
        if name not in steps:
            known = ", ".join(sorted(steps))
            findings.append((("rerun", index), "unknown_step", f"there is no step `{name}` (steps: {known})"))
    return findings


def _check_steps(steps: list[Step]) -> list[Finding]:
    findings: list[Finding] = []
    names: dict[str, int] = {}
    for index, step in enumerate(steps):
        if step.name in names:
            findings.append(
                (
                    ("steps", index, "name"),
                    "duplicate_step",
                    f"step name `{step.name}` is already used by steps[{names[step.name]}]",
                )
            )
        else:
            names[step.name] = index
    for index, step in enumerate(steps):
        seen: set[str] = set()
        for position, dependency in enumerate(step.depends_on):
            where: Loc = ("steps", index, "depends_on", position)
            if dependency == step.name:
                findings.append((where, "self_dependency", f"step `{step.name}` cannot depend on itself"))
            elif dependency not in names:
                known = echo_list(names) or "none"
                findings.append((where, "unknown_step", f"there is no step `{dependency}` (steps: {known})"))
            elif dependency in seen:
                findings.append((where, "duplicate_dependency", f"`{dependency}` is listed twice"))
            seen.add(dependency)
        if len(step.depends_on) > MAX_DEPENDENCIES:
            findings.append(
                (
                    ("steps", index, "depends_on"),
                    "too_many_dependencies",
                    f"a job may depend on at most {MAX_DEPENDENCIES} others (Batch's limit); "
                    f"this one lists {len(step.depends_on)}",
                )
            )
    cycle = _find_cycle({step.name: [d for d in step.depends_on if d in names] for step in steps})
    if cycle:
        first = names[cycle[0]]
        findings.append(
            (("steps", first, "depends_on"), "cycle", "steps depend on each other in a circle: " + " → ".join(cycle))
        )
    return findings


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _check_job(draft: JobDraft) -> list[Finding]:
    findings: list[Finding] = []
    settings = draft.settings
    label = f"step `{draft.step}`" if draft.loc else "the job"
    if settings.job_definition is None:
        findings.append(
            ((*draft.loc, "job_definition"), "missing", f"{label} has no `job_definition`; set it here or at the top")
        )
    if settings.resources is None:
        findings.append(
            ((*draft.loc, "resources"), "missing", f"{label} has no `resources`; set them here or at the top")
        )
    for name in settings.env or {}:
        prefix = next((prefix for prefix in RESERVED_ENV_PREFIXES if name.startswith(prefix)), None)
        if prefix is not None:
            findings.append(
                (
                    (*draft.where("env"), name),
                    "reserved_env",
                    f"`{name}`: names starting {prefix} are set by {RESERVED_ENV_PREFIXES[prefix]}",
                )
            )
    findings.extend(_merged_too_long(draft, label))
    for key in settings.tags or {}:
        if key.lower().startswith(("aws:", "batchdrop:")):
            findings.append(
                (
                    (*draft.where("tags"), key),
                    "reserved_tag",
                    f"tag `{key}`: keys starting aws: or batchdrop: are reserved",
                )
            )
    retries = settings.retries
    if retries is not None and retries.on_spot_interruption and retries.attempts < 2:
        findings.append(
            (
                (*draft.where("retries"), "attempts"),
                "spot_needs_attempts",
                "on_spot_interruption retries within `attempts`; set attempts to 2 or more",
            )
        )
    if settings.sweep is not None:
        findings.extend(_check_sweep(draft, settings.sweep))
    if settings.nodes is not None:
        findings.extend(_check_nodes(draft))
    return findings


def _check_nodes(draft: JobDraft) -> Iterator[Finding]:
    """A multi-node job is one gang of nodes: not an array, and not moved by batchdrop's recoveries (Batch
    retries it whole within `attempts`)."""
    for name in ("array_size", "sweep"):
        if getattr(draft.settings, name) is not None:
            yield (
                draft.where("nodes"),
                "nodes_and_array",
                f"use either `nodes` or `{name}`: a multi-node job cannot be an array job or a sweep",
            )
    retries = draft.settings.retries
    for name in ("out_of_memory", "spot_fallback"):
        if retries is not None and getattr(retries, name) is not None:
            yield (
                (*draft.where("retries"), name),
                "nodes_without_recovery",
                f"a multi-node job cannot have `retries.{name}`: it runs only on on-demand capacity, and Batch "
                "retries it whole within `attempts`",
            )


def _merged_too_long(draft: JobDraft, label: str) -> Iterator[Finding]:
    """A step's map and the top-level one may each be within its limit and together over it."""
    for name, most in _MERGED_MAPS.items():
        merged = getattr(draft.settings, name) or {}
        if len(merged) > most:
            yield (
                draft.where(name),
                "too_long",
                f"with the top-level `{name}`, {label} has {len(merged):,} entries; it may have at most {most}",
            )


def _check_sweep(draft: JobDraft, sweep: dict[str, list[str]]) -> list[Finding]:
    findings: list[Finding] = []
    where = draft.where("sweep")
    if draft.settings.array_size is not None:
        findings.append(
            (where, "sweep_and_array", "use either `sweep` or `array_size`: a sweep already sets the array size")
        )
    for name, values in sweep.items():
        if len(set(values)) < len(values):  # the usual case, no repeat, without counting
            duplicates = sorted(value for value, times in Counter(values).items() if times > 1)
            findings.append(((*where, name), "duplicate_value", f"values repeat: {echo_list(duplicates, quote='')}"))
        if f"SWEEP_{name.upper()}" in (draft.settings.env or {}):
            findings.append(
                ((*where, name), "sweep_env_clash", f"env already sets SWEEP_{name.upper()}, which this sweep sets")
            )
        if name in (draft.settings.parameters or {}):
            findings.append(
                (
                    (*where, name),
                    "sweep_parameter_clash",
                    f"`{name}` is both swept and set in `parameters`: each child's `Ref::{name}` takes its value "
                    f"from the sweep, so remove `{name}` from `parameters`",
                )
            )
    children = math.prod(len(values) for values in sweep.values())
    if not MIN_ARRAY_SIZE <= children <= MAX_ARRAY_SIZE:
        sizes = " × ".join(str(len(values)) for values in sweep.values())
        findings.append(
            (
                where,
                "sweep_size",
                f"the sweep makes {sizes} = {children:,} jobs; Batch runs {MIN_ARRAY_SIZE} to {MAX_ARRAY_SIZE:,} "
                "children in one array job",
            )
        )
    return findings


def in_dependency_order(drafts: list[JobDraft]) -> list[JobDraft]:
    """Stable topological order; `check_spec` has already ruled out cycles."""
    done: set[str] = set()
    ordered: list[JobDraft] = []
    pending = list(drafts)
    while pending:
        ready = [draft for draft in pending if all(dep in done for dep in draft.depends_on)]
        if not ready:
            raise ValueError("steps form a cycle")  # unreachable after check_spec
        for draft in ready:
            ordered.append(draft)
            done.add(draft.step)
        pending = [draft for draft in pending if draft.step not in done]
    return ordered
