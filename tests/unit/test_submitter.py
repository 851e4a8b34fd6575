"""Submitter against in-memory fakes of its Protocols: what a drop becomes, in milliseconds, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batchdrop.gateways.batch import BatchUnavailable
from batchdrop.platform.config import PlatformConfig
from batchdrop.platform.definition_commands import DefinitionCommand
from batchdrop.spec import sweep
from batchdrop.store.records import SpecSource
from batchdrop.submit.submitter import ClaimHeld, Drop, Submitter
from tests.conftest import EXAMPLES
from tests.unit.fakes import FakeBatch, FakeBucket, FixedConfig, MemoryTable

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
REDELIVERED = timedelta(seconds=720)
"""When SQS hands a message back: the intake queue's visibility timeout later."""
PIPELINE = "incoming/vision/resnet-pipeline.yaml"


@pytest.fixture
def world(platform_config: PlatformConfig) -> tuple[Submitter, MemoryTable, FakeBatch, FakeBucket]:
    table, batch = MemoryTable(), FakeBatch()
    bucket = FakeBucket({PIPELINE: (EXAMPLES / "specs" / "resnet-pipeline.yaml").read_bytes()})
    submitter = Submitter(
        table=table, batch=batch, bucket=bucket, config=FixedConfig(platform_config), clock=lambda: T0
    )
    return submitter, table, batch, bucket


def drop(key: str = PIPELINE, message: str = "m1", version: str = "v1") -> Drop:
    return Drop(source=SpecSource(bucket="jobs", key=key, version_id=version), message_id=message)


def test_a_pipeline_becomes_one_job_per_step_recorded_once_the_batch_is_flushed(world) -> None:
    submitter, table, batch, _ = world
    outcome = submitter.submit(drop())
    assert outcome.kind == "submitted"
    assert [job.step for job in outcome.jobs] == ["prep", "train", "evaluate"]
    assert table.runs[outcome.run_id].status == "submitting", "recorded for the batch, at flush"

    assert submitter.flush() == set()
    assert table.runs[outcome.run_id].status == "submitted"
    assert {job.step for job in table.jobs.values()} == {"prep", "train", "evaluate"}
    assert len(batch.submitted) == 3
    train = next(request for request in batch.submitted if "-train-" in request["jobName"])
    assert train["arrayProperties"] == {"size": 4}


def test_the_same_upload_delivered_twice_is_one_run_and_one_submission_per_step(world) -> None:
    submitter, _, batch, _ = world
    first = submitter.submit(drop(message="m1"))
    submitter.flush()
    again = submitter.submit(drop(message="m2"))
    assert (again.kind, again.run_id) == ("duplicate", first.run_id)
    assert len(batch.submitted) == 3


def test_a_bad_file_is_rejected_with_its_problems_and_submits_nothing(world) -> None:
    submitter, table, batch, bucket = world
    bucket.specs["incoming/vision/typo.yaml"] = b"version: 1\nname: typo\njob_definition: trainer\nresorces: {}\n"
    outcome = submitter.submit(drop("incoming/vision/typo.yaml"))
    submitter.flush()
    assert outcome.kind == "rejected"
    run = table.runs[outcome.run_id]
    assert run.status == "rejected"
    assert run.problems[0].code == "unknown_field"
    assert batch.submitted == []


def test_a_run_batch_refuses_midway_has_its_earlier_jobs_stopped_and_recorded_as_cancelled(world) -> None:
    submitter, table, batch, _ = world
    batch.refuse.add("train")
    outcome = submitter.submit(drop())
    submitter.flush()
    assert outcome.kind == "rejected"
    assert outcome.problems[0].code == "refused_by_batch"
    (prep,) = table.jobs.values()
    assert (prep.step, prep.status, prep.failure_class) == ("prep", "FAILED", "cancelled")
    assert batch.terminated == [prep.job_id]
    assert [ref.job_id for ref in table.runs[outcome.run_id].jobs] == [prep.job_id]


def test_a_drop_whose_records_cannot_be_written_returns_alone(world) -> None:
    submitter, table, _, bucket = world
    bucket.specs["incoming/vision/other.yaml"] = bucket.specs[PIPELINE]
    good = submitter.submit(drop(message="good"))
    doomed = submitter.submit(drop("incoming/vision/other.yaml", message="doomed"))
    table.refuse_runs.add(str(doomed.run_id))
    assert submitter.flush() == {"doomed"}
    assert table.runs[str(good.run_id)].status == "submitted"
    assert table.runs[str(doomed.run_id)].status == "submitting", "its message comes back and resumes"


def test_a_redelivered_message_resumes_and_adopts_what_batch_already_has(world) -> None:
    submitter, table, batch, _ = world
    table.refuse_runs.add(Submitter.run_id(drop().source))
    submitter.submit(drop())
    assert submitter.flush() == {"m1"}, "the records were not written: the message comes back"
    table.refuse_runs.clear()

    submitter.clock = lambda: T0 + REDELIVERED
    outcome = submitter.submit(drop())  # the same message, again: the claim is its own
    assert outcome.kind == "submitted"
    assert len(batch.submitted) == 3, "every job adopted by its name, none submitted twice"
    assert table.runs[str(outcome.run_id)].status == "submitted"


TRAINER = "arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3"
EXPERIMENTS = "incoming/vision/experiments.yaml"
SWEEP_WITHOUT_COMMAND = b"""\
version: 1
name: experiments
job_definition: trainer
resources: {vcpus: 4, memory_mib: 16384, gpus: 1}
sweep: {experiment_file: [s3://b/a.yaml, s3://b/b.yaml]}
"""


def test_a_sweep_without_command_wraps_the_command_batch_has_for_its_job_definition(world) -> None:
    submitter, _, batch, bucket = world
    bucket.specs[EXPERIMENTS] = SWEEP_WITHOUT_COMMAND
    batch.definitions[TRAINER] = DefinitionCommand(("python", "train.py", "--experiment", "Ref::experiment_file"))
    outcome = submitter.submit(drop(EXPERIMENTS))
    assert outcome.kind == "submitted"
    (request,) = batch.submitted
    assert request["containerOverrides"]["command"][3:] == [
        sweep.SHELL_NAME,
        "python",
        "train.py",
        "--experiment",
        sweep.marker("experiment_file"),
    ]
    assert request["arrayProperties"] == {"size": 2}
    assert batch.described == [TRAINER]


def test_steps_that_wrap_the_same_job_definition_read_it_once(world) -> None:
    submitter, _, batch, bucket = world
    bucket.specs[EXPERIMENTS] = b"""\
version: 1
name: two-sweeps
job_definition: trainer
resources: {vcpus: 4, memory_mib: 16384}
steps:
  - {name: small, sweep: {seed: ["1", "2"]}}
  - {name: large, sweep: {seed: ["1", "2", "3"]}}
"""
    batch.definitions[TRAINER] = DefinitionCommand(("python", "train.py"))
    assert submitter.submit(drop(EXPERIMENTS)).kind == "submitted"
    assert [request["arrayProperties"]["size"] for request in batch.submitted] == [2, 3]
    assert batch.described == [TRAINER]


def test_a_sweep_whose_job_definition_has_no_command_is_rejected_with_a_receipt(world) -> None:
    submitter, table, batch, bucket = world
    bucket.specs[EXPERIMENTS] = SWEEP_WITHOUT_COMMAND
    batch.definitions[TRAINER] = DefinitionCommand(None, "has no command (its image's own CMD would run)")
    outcome = submitter.submit(drop(EXPERIMENTS))
    submitter.flush()
    assert outcome.kind == "rejected"
    (problem,) = outcome.problems
    assert (problem.code, problem.path, problem.line) == ("sweep_definition_command", "sweep", 5)
    assert "give `command` in the spec" in problem.message
    run = table.runs[str(outcome.run_id)]
    assert run.status == "rejected"
    assert run.receipt_key is not None, "told like every rejection: record, receipt, event"
    assert batch.submitted == []


def test_batch_not_answering_for_the_job_definition_returns_the_message_for_a_retry(world) -> None:
    submitter, table, batch, bucket = world
    bucket.specs[EXPERIMENTS] = SWEEP_WITHOUT_COMMAND
    batch.definitions_unavailable = True
    with pytest.raises(BatchUnavailable):
        submitter.submit(drop(EXPERIMENTS))
    assert table.runs[Submitter.run_id(drop(EXPERIMENTS).source)].status == "submitting", "claimed, not decided"
    assert batch.submitted == []

    batch.definitions_unavailable = False
    batch.definitions[TRAINER] = DefinitionCommand(("python", "train.py"))
    submitter.clock = lambda: T0 + REDELIVERED
    outcome = submitter.submit(drop(EXPERIMENTS))  # the same message, redelivered: it resumes
    assert outcome.kind == "submitted"
    assert len(batch.submitted) == 1


def test_the_same_message_delivered_twice_at_once_is_handed_back_not_submitted_twice(world) -> None:
    """SQS delivers at least once: a second copy may arrive while the first is being handled. Its claim
    is its own message's but young: the copy is handed back (not acknowledged: the holder may yet fail)."""
    submitter, table, batch, _ = world
    table.refuse_runs.add(Submitter.run_id(drop().source))  # the holder's records are not written yet
    submitter.submit(drop())
    submitted = len(batch.submitted)

    submitter.clock = lambda: T0 + timedelta(seconds=5)
    with pytest.raises(ClaimHeld):
        submitter.submit(drop())
    assert len(batch.submitted) == submitted, "nothing submitted twice"
