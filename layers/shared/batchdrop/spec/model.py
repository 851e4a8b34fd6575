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
from batchdrop.spec.nodes import Nodes

MAX_ARRAY_SIZE = 10_000
MIN_ARRAY_SIZE = 2
MAX_DEPENDENCIES = 20
"""Batch accepts at most 20 `dependsOn` entries on one job."""
MAX_STEPS = 50
MAX_PARAMETERS = 100
MAX_ENV = 200
MAX_TAGS = 50
"""A spec's own tags; Batch's limit of 50 also counts batchdrop's (`batch_limits.MAX_TAGS`)."""

Name = Annotated[
    str,
    StringConstraints(
        pattern=describe_pattern(
            r"^[A-Za-z0-9_-]{1,64}$", "may contain only letters, digits, `-` and `_` (1 to 64 characters)"
        )
    ),
]
ResumeFrom = Annotated[
    str,
    StringConstraints(
        pattern=describe_pattern(
            r"^(latest|[a-z2-7]{20})$",
            "must be `latest` or a run id (20 letters and digits, as `batchdrop runs` shows)",
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
    """What one job (each child of an array job) asks of its instance; routing reads `gpus`."""

    vcpus: Annotated[
        float,
        Field(
            gt=0,
            le=4096,
            description="vCPUs for the job: more than 0, at most 4096, and at most its queue's `max_vcpus`. Required.",
            examples=[8],
        ),
    ]
    memory_mib: Annotated[
        int,
        Field(
            ge=128,
            le=24 * 1024 * 1024,
            description="Memory for the job in MiB (1 GiB = 1024): 128 to 25,165,824, and at most its queue's "
            "`max_memory_mib`. Required.",
            examples=[32768],
        ),
    ]
    gpus: Annotated[
        int,
        Field(
            ge=0,
            le=64,
            description="GPUs for the job, 0 to 64 (default 0). More than 0 sends the job only to a gpu queue; "
            "0 never does.",
            examples=[1],
        ),
    ] = 0

    @property
    def hardware(self) -> Hardware:
        return "gpu" if self.gpus > 0 else "cpu"


MAX_RETRY_EXIT_CODES = 2
"""Batch takes 5 retry conditions (`evaluateOnExit`); batchdrop uses the other 3 (out of memory, spot
reclaims, everything else)."""


class OutOfMemoryRecovery(_Strict):
    """A job that ran out of memory is resubmitted by batchdrop with more (Batch would retry it as it was)."""

    times: Annotated[
        int,
        Field(
            ge=1,
            le=5,
            description="How many times, 1 to 5, a job of this step that ran out of memory is resubmitted with "
            "more memory. Required.",
            examples=[2],
        ),
    ]
    grow: Annotated[
        float,
        Field(
            gt=1.0,
            le=8.0,
            description="Each resubmission asks for the memory of the last × grow, more than 1 and at most 8 "
            "(default 2.0), never more than the queue's largest instance: past it the failure is final.",
            examples=[2.0],
        ),
    ] = 2.0


class SpotFallback(_Strict):
    """A job reclaimed too often on spot capacity is resubmitted on the route's on-demand queue."""

    after: Annotated[
        int,
        Field(
            ge=1,
            le=10,
            description="After this many spot reclaims (1 to 10) the job is resubmitted on the `fallback` queue "
            "of its route, with the attempts it has left; it gets at most this many attempts on spot. Required.",
            examples=[2],
        ),
    ]


class Retries(_Strict):
    """How a failed job is retried: by Batch within one job (`attempts`), or resubmitted by batchdrop with
    more memory (`out_of_memory`) or on on-demand capacity (`spot_fallback`)."""

    attempts: Annotated[
        int,
        Field(
            ge=1,
            le=10,
            description="Attempts in all, 1 to 10 (default 1: no retry). Without `on_spot_interruption` every "
            "failure is retried until they are used up.",
            examples=[3],
        ),
    ] = 1
    on_spot_interruption: bool = Field(
        default=False,
        description="true: retry only when AWS reclaims the spot instance (Batch's `Host EC2…` reasons), within "
        "`attempts` (which must then be 2 or more); any other failure ends the job. Default false.",
        examples=[True],
    )
    out_of_memory: OutOfMemoryRecovery | None = Field(
        default=None,
        description="Resubmit a job that ran out of memory with more memory: `{times, grow}` (docs/recovery.md). "
        "Default: none, the failure is final.",
        examples=[{"times": 2, "grow": 2.0}],
    )
    spot_fallback: SpotFallback | None = Field(
        default=None,
        description="Resubmit a job reclaimed `after` times on spot capacity on its route's on-demand `fallback` "
        "queue: `{after}` (docs/recovery.md). Default: none.",
        examples=[{"after": 2}],
    )
    on_exit_codes: Annotated[
        list[Annotated[int, Field(ge=1, le=255)]],
        Field(
            max_length=MAX_RETRY_EXIT_CODES,
            description='Exit codes (1 to 255, at most 2) that mean "transient, try again": Batch retries them '
            "within `attempts`, and spot reclaims too; any other non-zero exit is a bug and is not retried. "
            "Default: none (without `on_spot_interruption`, every failure is retried).",
            examples=[[75]],
        ),
    ] = []


class Notify(_Strict):
    """Which statuses are posted to the team's Slack channel."""

    on: Annotated[
        list[NotifyStatus],
        Field(
            max_length=5,
            description="Statuses to be told of, besides those always told (a rejected spec, a failed, lost or "
            "stuck job): any of submitted, running, succeeded, failed, stuck. Default: none.",
            examples=[["succeeded", "failed"]],
        ),
    ] = []


class JobSettings(_Strict):
    """The fields a step may set; at the top level they are every step's defaults."""

    job_definition: Alias | None = Field(
        default=None,
        description="Which job definition runs the job: an alias the platform config allows your team. It fixes "
        "the image, the IAM role and privileged settings. Every job needs one: set it at the top or on the step.",
        examples=["trainer"],
    )
    command: Annotated[list[Text], Field(min_length=1, max_length=256)] | None = Field(
        default=None,
        description="The container's command, one item per argument (1 to 256 items); replaces the job "
        "definition's command. Default: the job definition's. Batch puts `parameters` where it says `Ref::<name>`.",
        examples=[["python", "train.py", "--epochs", "20"]],
    )
    parameters: Annotated[dict[ParameterName, Text], Field(max_length=MAX_PARAMETERS)] | None = Field(
        default=None,
        description="Batch parameters: each value replaces `Ref::<name>` in the command (the job definition's, "
        "or `command`). At most 100; a step's entries merge over the top-level ones.",
        examples=[{"experiment_file": "s3://ml-data/experiments/resnet.yaml"}],
    )
    env: Annotated[dict[EnvName, Text], Field(max_length=MAX_ENV)] | None = Field(
        default=None,
        description="Environment variables for the container: upper-case names, at most 200; not names starting "
        "AWS_BATCH, BATCHDROP_, AWS_CONTAINER_ or ECS_. A step's entries merge over the top-level ones.",
        examples=[{"DATA_DIR": "/mnt/data/coco"}],
    )
    resources: Resources | None = Field(
        default=None,
        description="vCPUs, memory and GPUs for the job; they choose its queue (gpus > 0: a gpu queue). Every job "
        "needs them: at the top or on the step (a step's replace the top-level ones whole).",
        examples=[{"vcpus": 8, "memory_mib": 32768, "gpus": 1}],
    )
    timeout_minutes: Annotated[int, Field(ge=1, le=14 * 24 * 60)] | None = Field(
        default=None,
        description="Batch stops an attempt that runs longer: 1 to 20,160 minutes (14 days). Default: the job "
        "definition's timeout, if it has one.",
        examples=[240],
    )
    retries: Retries | None = Field(
        default=None,
        description="How Batch retries a failed job. Default: as the job definition says (usually no retry).",
        examples=[{"attempts": 3, "on_spot_interruption": True}],
    )
    array_size: Annotated[int, Field(ge=MIN_ARRAY_SIZE, le=MAX_ARRAY_SIZE)] | None = Field(
        default=None,
        description="Run the job as one Batch array job of this many children, 2 to 10,000; each child reads its "
        "index in AWS_BATCH_JOB_ARRAY_INDEX. Not with `sweep`; with `steps`, on the step, not at the top.",
        examples=[100],
    )
    sweep: (
        Annotated[
            dict[SweepName, Annotated[list[Text], Field(min_length=1, max_length=MAX_ARRAY_SIZE)]],
            Field(min_length=1, max_length=10),
        ]
        | None
    ) = Field(
        default=None,
        description="A parameter sweep (docs/sweeps.md): name → list of values, 1 to 10 names. Their cartesian "
        "product becomes one array job of 2 to 10,000 children; each child sees its values as SWEEP_<NAME>, and in "
        "place of `Ref::<name>` in the command (`command`, or else the job definition's). Not with `array_size`, "
        "nor a name also in `parameters`; with `steps`, on the step.",
        examples=[{"lr": ["0.1", "0.01"], "batch": ["32", "64"]}],
    )
    nodes: Nodes | None = Field(
        default=None,
        description="Run the job as one multi-node parallel job (docs/multinode.md): `{count}` nodes, each with "
        "`resources`, for distributed training. Needs a multinode job definition; not with `array_size` or "
        "`sweep`; with `steps`, on the step.",
        examples=[{"count": 4}],
    )
    priority: Annotated[int, Field(ge=0, le=9999)] | None = Field(
        default=None,
        description="Scheduling priority on a fair-share queue, 0 to 9999 (higher runs sooner). Default: the "
        "team's `default_priority`. Ignored, with a warning, on other queues.",
        examples=[10],
    )
    tags: Annotated[dict[TagKey, TagValue], Field(max_length=MAX_TAGS)] | None = Field(
        default=None,
        description="Cost and ownership tags, put on the Batch job and propagated to its resources. Keys may not "
        "start aws: or batchdrop:; batchdrop adds 4 of its own, and Batch takes at most 50 in all. A step's tags "
        "merge over the top-level ones.",
        examples=[{"project": "vision-2027", "cost_center": "4410"}],
    )


class Step(JobSettings):
    """One job of a pipeline: the top-level settings apply unless it sets its own."""

    name: Name = Field(
        description="The step's name, unique in the spec: letters, digits, `-` and `_`, 1 to 64 characters. Required.",
        examples=["train"],
    )
    depends_on: Annotated[list[Name], Field(max_length=MAX_STEPS)] = Field(
        default=[],
        description="Steps that must succeed before this one starts (by name, at most 20, no cycles). Default: none.",
        examples=[["prep"]],
    )


class JobSpec(JobSettings):
    """A job spec file, version 1."""

    model_config = ConfigDict(
        title="batchdrop job spec",
        json_schema_extra={
            "description": "A job spec for batchdrop (docs/spec.md): drop it under "
            "incoming/<team>/ in the jobs bucket and batchdrop submits it to AWS Batch."
        },
    )

    version: Annotated[
        int, Field(ge=1, le=1, description="The spec format's version: always 1. Required.", examples=[1])
    ]
    name: Name = Field(
        description="The spec's name, the start of each Batch job's name: letters, digits, `-` and `_`, 1 to 64 "
        "characters. Required.",
        examples=["resnet-sweep"],
    )
    team: Name | None = Field(
        default=None,
        description="Your team. Optional: the file's folder, incoming/<team>/, decides; if given, it must match.",
        examples=["vision"],
    )
    environment: Environment = Field(
        default="adhoc",
        description="adhoc or production (default adhoc): the team must be allowed it, and routes may send "
        "production jobs to their own queues.",
        examples=["production"],
    )
    notify: Notify | None = Field(
        default=None,
        description="Which statuses are posted to the team's Slack channel, besides those always told. "
        "Default: only those.",
        examples=[{"on": ["succeeded", "failed"]}],
    )
    resume: ResumeFrom | None = Field(
        default=None,
        description="Resume an earlier run of this team: `latest` (the newest run of this same file) or a run "
        "id. Each step whose content is unchanged, that succeeded there, and whose upstream steps are reused too "
        "is reused, not run again; the rest are submitted (docs/resume.md). Default: run every step.",
        examples=["latest"],
    )
    rerun: Annotated[list[Name], Field(min_length=1, max_length=MAX_STEPS)] | None = Field(
        default=None,
        description="With `resume`: steps to run again even if unchanged and succeeded (and every step after "
        "them). Written by `batchdrop rerun --steps`. Default: none.",
        examples=[["evaluate"]],
    )
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)] | None = Field(
        default=None,
        description="A pipeline of 1 to 50 jobs, each routed on its own, run in the order `depends_on` says. "
        "The top-level settings are every step's defaults. Default: one job, the spec itself.",
        examples=[[{"name": "prep", "command": ["python", "prep.py"]}]],
    )


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
