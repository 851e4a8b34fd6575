"""The job spec, version 1 (docs/spec.md): its model. Its rules are `spec.rules`; reading a file is
`spec.parse`.

A spec is strict on purpose: an unknown field is an error (a typo such as
`gpu: 1` must never be silently ignored), a wrong type is an error (no `"8"`
for 8), and anything that would let a spec choose its image, its IAM role or
privileged settings is refused, because the platform's job definitions decide
those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from batchdrop.errors import Loc
from batchdrop.spec.explain import describe_pattern

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
            "description": "A job spec for batchdrop (docs/spec.md): drop it under "
            "incoming/<team>/ in the jobs bucket and batchdrop submits it to AWS Batch."
        },
    )

    version: Annotated[int, Field(ge=1, le=1, description="Always 1.")]
    name: Name
    team: Name | None = None
    environment: Environment = "adhoc"
    notify: Notify | None = None
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)] | None = None


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
