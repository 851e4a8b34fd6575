"""Test scaffolding in one place, for unit and integration tests alike: the records a run leaves (a job of a
run, the run that lists its jobs, the table that holds them) and the pipeline spec most recovery and resume
tests drop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from batchdrop.spec.model import Resources
from batchdrop.store.records import JobRecord, RunRecord, SpecSource, SubmittedJobRef, Transition

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
SOURCE = SpecSource(bucket="jobs", key="incoming/vision/p.yaml", version_id="v1")
PIPELINE_STEPS = ("prep", "train", "evaluate")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def create_records_table(dynamodb: Any, name: str) -> None:
    """The records table's keys (PK, SK), billed on demand, made with `dynamodb` (a client, as under moto)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def job_record(
    job_id: str, step: str, *, depends_on: list[str] | None = None, array_size: int | None = None
) -> JobRecord:
    """A job of run `r1` (spec `p`, team vision) just submitted to cpu-shared with 2 vCPUs and 4 GiB;
    `depends_on` are job ids, as a job record keeps them."""
    return JobRecord(
        job_id=job_id,
        run_id="r1",
        team="vision",
        environment="adhoc",
        spec_name="p",
        step=step,
        job_name=f"p-{step}-r1",
        queue="cpu-shared",
        queue_arn="arn:aws:batch:us-east-1:123456789012:job-queue/cpu-shared",
        hardware="cpu",
        job_definition="trainer",
        job_definition_arn="arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3",
        resources=Resources(vcpus=2, memory_mib=4096),
        array_size=array_size,
        depends_on=depends_on or [],
        history={"0:SUBMITTED": Transition(status="SUBMITTED", at=T0)},
        submitted_at=T0,
        last_event_at=T0,
        spec_digest="0" * 64,
        source=SOURCE,
        notify_on=["succeeded"],
    )


def run_record(jobs: Sequence[SubmittedJobRef] = (), *, status: str = "submitted", **update: Any) -> RunRecord:
    """Run `r1` of team vision, received and claimed at T0, listing `jobs`; `update` sets other fields."""
    fields: dict[str, Any] = {
        "run_id": "r1",
        "team": "vision",
        "status": status,
        "source": SOURCE,
        "received_at": T0,
        "claim_owner": "m",
        "claimed_at": T0,
        "jobs": list(jobs),
    }
    return RunRecord.model_validate(fields | update)


def run_of_jobs(jobs: Sequence[JobRecord]) -> RunRecord:
    """Run `r1`, submitted, listing `jobs` as Submitter does: each after the steps of the jobs it depends on."""
    steps = {job.job_id: job.step for job in jobs}
    return run_record([SubmittedJobRef.of(job, [steps[job_id] for job_id in job.depends_on]) for job in jobs])


def pipeline_spec(
    name: str, steps: Sequence[str] = PIPELINE_STEPS, *, team: str = "vision", **fields: Mapping[str, str]
) -> bytes:
    """A pipeline of `steps` for `team`, each after the one before it, each `python <step>.py` with the job
    definition trainer, 2 vCPUs and 4 GiB. `fields` gives a step more fields, or others in place of those,
    as YAML: `train={"retries": "{out_of_memory: {times: 2}}"}`."""
    lines = [f"version: 1\nname: {name}\nteam: {team}\njob_definition: trainer\nsteps:"]
    for index, step in enumerate(steps):
        values = {"command": f"[python, {step}.py]", "resources": "{vcpus: 2, memory_mib: 4096}"}
        if index:
            values = {"depends_on": f"[{steps[index - 1]}]", **values}
        values |= fields.get(step, {})
        lines += [f"  - name: {step}", *(f"    {field}: {value}" for field, value in values.items())]
    return "\n".join(lines).encode() + b"\n"
