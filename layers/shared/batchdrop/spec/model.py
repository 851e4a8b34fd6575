"""The job spec, version 1 (DESIGN.md §3): its model, its rules, and how it is read.

A spec is strict on purpose: an unknown field is an error (a typo such as
`gpu: 1` must never be silently ignored), a wrong type is an error (no `"8"`
for 8), and anything that would let a spec choose its image, its IAM role or
privileged settings is refused, because the platform's job definitions decide
those.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from batchdrop.errors import InvalidInput, Loc, Problem, SpecRejected, echo_list, render_loc
from batchdrop.spec.documents import Document, format_for, load_document
from batchdrop.spec.explain import describe_pattern, problems_from_validation_error

MAX_ARRAY_SIZE = 10_000
MIN_ARRAY_SIZE = 2
MAX_DEPENDENCIES = 20
"""Batch accepts at most 20 `dependsOn` entries on one job."""
MAX_STEPS = 50
MAX_PARAMETERS = 100
MAX_ENV = 200
MAX_TAGS = 50
"""A spec's own tags; Batch's limit of 50 also counts batchdrop's (`planning.MAX_TAGS`)."""

Name = Annotated[
    str,
    StringConstraints(
        pattern=describe_pattern(
            r"^[A-Za-z0-9_-]{1,64}$", "may contain only letters, digits, `-` and `_` (1 to 64 characters)"
        )
    ),
]
Alias = Annotated[
    str,
    StringConstraints(
        pattern=describe_pattern(
            r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
            "must be a job definition alias from the platform config, such as `trainer` (not an ARN or an image)",
        )
    ),
]
EnvName = Annotated[
    str,
    StringConstraints(
        pattern=describe_pattern(
            r"^[A-Z_][A-Z0-9_]{0,127}$",
            "is not an environment variable name: use upper-case letters, digits and `_`, "
            "not starting with a digit (e.g. DATA_DIR)",
        )
    ),
]
ParameterName = Annotated[
    str,
    StringConstraints(
        pattern=describe_pattern(
            r"^[A-Za-z_][A-Za-z0-9_]{0,127}$",
            "is not a parameter name: use letters, digits and `_`, as in `Ref::experiment_file`",
        )
    ),
]
SweepName = Annotated[
    str,
    StringConstraints(
        pattern=describe_pattern(
            r"^[a-z][a-z0-9_]{0,31}$",
            "is not a sweep name: use lower-case letters, digits and `_`, starting with a letter "
            "(each child sees it as SWEEP_<NAME>)",
        )
    ),
]
_TAG_CHARACTERS = describe_pattern(r"^[\w .:/=+@-]*$", "may contain only letters, digits, spaces and `_ . : / = + - @`")
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_TAG_CHARACTERS)]
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=_TAG_CHARACTERS)]
Text = Annotated[str, StringConstraints(max_length=8192)]

Environment = Literal["adhoc", "production"]
NotifyStatus = Literal["submitted", "running", "succeeded", "failed", "stuck"]
Hardware = Literal["cpu", "gpu"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False, defer_build=True)


class Resources(_Strict):
    vcpus: Annotated[float, Field(gt=0, le=4096)]
    memory_mib: Annotated[int, Field(ge=128, le=24 * 1024 * 1024)]
    gpus: Annotated[int, Field(ge=0, le=64)] = 0

    @property
    def hardware(self) -> Hardware:
        return "gpu" if self.gpus > 0 else "cpu"


class Retries(_Strict):
    attempts: Annotated[int, Field(ge=1, le=10)] = 1
    on_spot_interruption: bool = False


class Notify(_Strict):
    on: Annotated[list[NotifyStatus], Field(max_length=5)] = []


class JobSettings(_Strict):
    """The fields a step may set; at the top level they are every step's defaults."""

    job_definition: Alias | None = None
    command: Annotated[list[Text], Field(min_length=1, max_length=256)] | None = None
    parameters: Annotated[dict[ParameterName, Text], Field(max_length=MAX_PARAMETERS)] | None = None
    env: Annotated[dict[EnvName, Text], Field(max_length=MAX_ENV)] | None = None
    resources: Resources | None = None
    timeout_minutes: Annotated[int, Field(ge=1, le=14 * 24 * 60)] | None = None
    retries: Retries | None = None
    array_size: Annotated[int, Field(ge=MIN_ARRAY_SIZE, le=MAX_ARRAY_SIZE)] | None = None
    sweep: (
        Annotated[
            dict[SweepName, Annotated[list[Text], Field(min_length=1, max_length=MAX_ARRAY_SIZE)]],
            Field(min_length=1, max_length=10),
        ]
        | None
    ) = None
    priority: Annotated[int, Field(ge=0, le=9999)] | None = None
    tags: Annotated[dict[TagKey, TagValue], Field(max_length=MAX_TAGS)] | None = None


class Step(JobSettings):
    name: Name
    depends_on: Annotated[list[Name], Field(max_length=MAX_STEPS)] = []


class JobSpec(JobSettings):
    """A job spec file, version 1."""

    model_config = ConfigDict(
        title="batchdrop job spec",
        json_schema_extra={
            "description": "A job spec for batchdrop (DESIGN.md §3): drop it under "
            "incoming/<team>/ in the jobs bucket and batchdrop submits it to AWS Batch."
        },
    )

    version: Annotated[int, Field(ge=1, le=1, description="Always 1.")]
    name: Name
    team: Name | None = None
    environment: Environment = "adhoc"
    notify: Notify | None = None
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)] | None = None


_SETTINGS = tuple(JobSettings.model_fields)
_MERGED_MAPS = {"parameters": MAX_PARAMETERS, "env": MAX_ENV, "tags": MAX_TAGS}
"""Maps a step merges over the top-level ones, each with its most entries (once merged too)."""
_NOT_DEFAULTS_WITH_STEPS = ("sweep", "array_size")
"""Misplaced at the top of a spec with steps (`check_spec` says so), so never copied into each step."""
SINGLE_STEP = "main"
"""The step name of a spec without `steps`: it is one job."""


@dataclass(frozen=True)
class JobDraft:
    """One Batch job of a spec: a step with the top-level defaults applied."""

    step: str
    loc: Loc
    """Where the step is written: `("steps", 1)`, or `()` for a spec without steps."""
    depends_on: tuple[str, ...]
    settings: JobSettings
    origins: dict[str, Loc]
    """For each field that has a value, where it was written."""

    @property
    def resources(self) -> Resources:
        assert self.settings.resources is not None, "resolve_jobs guarantees resources"
        return self.settings.resources

    @property
    def job_definition(self) -> str:
        assert self.settings.job_definition is not None, "resolve_jobs guarantees a job definition"
        return self.settings.job_definition

    def where(self, field: str) -> Loc:
        return self.origins.get(field, self.loc)

    @property
    def array_size(self) -> int | None:
        if self.settings.sweep:
            return math.prod(len(values) for values in self.settings.sweep.values())
        return self.settings.array_size


RESERVED_ENV_PREFIXES = {
    "AWS_BATCH": "Batch",
    "BATCHDROP_": "batchdrop",
    # A job acts as its job definition's role through these; a spec that set them could point the SDK at
    # other credentials, or hide the role the platform chose.
    "AWS_CONTAINER_": "the container runtime, which gives a job its role's credentials through them (and their token)",
    "ECS_": "the container runtime (the ECS agent), which tells a job its metadata and credentials endpoints",
}
"""Environment names a spec may not set, by prefix, and who sets them instead."""

Finding = tuple[Loc, str, str]
"""(where, code, message): a problem before it is given a line number."""


@dataclass(frozen=True)
class ParsedSpec:
    spec: JobSpec
    document: Document
    jobs: tuple[JobDraft, ...]
    """In dependency order: every job comes after the jobs it depends on."""


def parse_spec(raw: bytes, filename: str) -> ParsedSpec:
    """Read, validate and resolve a spec file; raise `SpecRejected` with every problem."""
    document_format = format_for(filename)
    if document_format is None:
        raise SpecRejected([Problem(path="", code="file_type", message="a spec file must end in .yaml, .yml or .json")])
    try:
        document = load_document(raw, document_format)
    except InvalidInput as exc:
        raise SpecRejected(exc.problems) from exc
    try:
        spec = JobSpec.model_validate(document.data)
    except ValidationError as exc:
        # Forbidden fields fail validation as unknown ones; say why they are forbidden instead.
        findings = forbidden_findings(document.data)
        flagged = {render_loc(loc) for loc, _, _ in findings}
        explained = (
            problem
            for problem in problems_from_validation_error(exc, document, JobSpec)
            if not (problem.code == "unknown_field" and problem.path in flagged)
        )
        raise SpecRejected(itertools.chain(document.problems(findings), explained)) from exc
    drafts = resolve_jobs(spec)
    # Without escapes, every text of the spec is a substring of the file: one search rules IAM ARNs out.
    may_hold_arn = b"\\" in raw or _IAM_ARN_BYTES.search(raw) is not None
    findings = check_spec(spec, drafts, scan_text=may_hold_arn)
    if findings:
        raise SpecRejected(document.problems(findings))
    return ParsedSpec(spec=spec, document=document, jobs=tuple(_in_dependency_order(drafts)))


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
_IAM_ARN_BYTES = re.compile(_IAM_ARN.pattern.encode(), re.IGNORECASE)


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
        for name in ("sweep", "array_size"):
            if getattr(spec, name) is not None:
                findings.append(
                    ((name,), "misplaced", f"with `steps`, put `{name}` on the step that needs it, not at the top")
                )
        findings.extend(_check_steps(spec.steps))
        for index, step in enumerate(spec.steps if scan_text else ()):
            findings.extend(_iam_arn_findings(step, ("steps", index)))
    for draft in drafts:
        findings.extend(_check_job(draft))
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
    return findings


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
    if draft.settings.command is None:
        findings.append(
            (
                where,
                "sweep_needs_command",
                "a sweep needs `command`, so batchdrop can set each child's SWEEP_* variables before it runs",
            )
        )
    return findings


def _in_dependency_order(drafts: list[JobDraft]) -> list[JobDraft]:
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
