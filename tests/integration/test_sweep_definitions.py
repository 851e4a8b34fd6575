"""Sweeps the way teams run them, end to end on the emulator: a sweep without `command` wraps the command
of the job definition Batch holds (read with DescribeJobDefinitions), and a swept `Ref::` parameter is
filled per child by the prelude, never once by Batch (docs/sweeps.md)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from batchdrop.gateways.batch import BatchGateway
from batchdrop.spec import sweep
from batchdrop.store.items import job_key
from batchdrop.store.queries import RecordQueries
from tests.conftest import EXAMPLES
from tests.faults import FaultProxy
from tests.integration.conftest import LocalStack
from tests.integration.submitting import as_if_redelivered
from tests.integration.test_submit import capture_submissions, run_of

Invoke = Callable[[dict[str, Any]], Any]
ARN = "arn:aws:batch:us-east-1:123456789012:job-definition"
TRAINER_COMMAND = ["python", "train.py", "--experiment", "Ref::experiment_file", "--out=Ref::output_path"]
EXPERIMENTS = ["s3://ml-data/experiments/a.yaml", "s3://ml-data/experiments/b b.yaml", "s3://ml-data/it's.yaml"]
SWEEP_WITHOUT_COMMAND = f"""\
version: 1
name: experiments
job_definition: sweeper
resources: {{vcpus: 4, memory_mib: 16384, gpus: 1}}
parameters: {{output_path: s3://ml-data/results}}
sweep:
  experiment_file: {json.dumps(EXPERIMENTS)}
  seed: ["1", "2"]
""".encode()


def sweep_beside(table: RecordQueries, job_id: str) -> dict[str, list[str]] | None:
    """The sweep kept beside a job, in its own item (`JOB#<id>` / `SWEEP`), read as the report reads it; and
    none of it on the job's record, which every state change updates."""
    stored = table.client.get_item(TableName=table.table_name, Key=job_key(job_id), ConsistentRead=True)["Item"]
    assert "sweep" not in stored, "never on the record"
    return table.get_jobs_with_sweeps([job_id], sweeps_of=[job_id])[job_id].sweep


def register(local_stack: LocalStack, name: str, command: list[str] | None) -> str:
    properties: dict[str, Any] = {
        "image": f"public.ecr.aws/docker/library/python:3.13-slim#{name}",
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
    }
    if command is not None:
        properties["command"] = command
    response = local_stack.client("batch").register_job_definition(
        jobDefinitionName=name,
        type="container",
        parameters={"experiment_file": "s3://ml-data/experiments/default.yaml"},
        containerProperties=properties,
    )
    return str(response["jobDefinitionArn"])


@pytest.fixture
def definitions(local_stack: LocalStack) -> dict[str, str]:
    """Two job definitions the platform team registered, and a platform config naming them."""
    found = {"sweeper": register(local_stack, "vision-sweeper", TRAINER_COMMAND)}
    found["bare"] = register(local_stack, "vision-bare", None)
    assert found == {"sweeper": f"{ARN}/vision-sweeper:1", "bare": f"{ARN}/vision-bare:1"}
    config = (EXAMPLES / "platform.yaml").read_text()
    trainer = f"      trainer: {ARN}/vision-trainer:3\n"
    assert trainer in config
    aliases = "".join(f"      {alias}: {arn}\n" for alias, arn in found.items())
    local_stack.client("s3").put_object(
        Bucket=local_stack.bucket, Key="config/platform.yaml", Body=config.replace(trainer, trainer + aliases).encode()
    )
    return found


def test_a_sweep_without_command_is_one_array_job_wrapping_the_definitions_command(
    local_stack: LocalStack, definitions: dict[str, str], submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    sent = capture_submissions(module)
    upload = local_stack.upload("incoming/vision/experiments.yaml", SWEEP_WITHOUT_COMMAND)

    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}

    (request,) = sent
    assert request["jobDefinition"] == definitions["sweeper"]
    assert request["arrayProperties"] == {"size": 6}
    assert request["parameters"] == {"output_path": "s3://ml-data/results"}
    command = request["containerOverrides"]["command"]
    assert command[:2] == ["sh", "-c"]
    assert command[3:] == [
        sweep.SHELL_NAME,
        "python",
        "train.py",
        "--experiment",
        sweep.marker("experiment_file"),
        "--out=Ref::output_path",
    ], "the swept Ref:: is a marker Batch leaves alone; the parameter that is not swept stays Batch's"
    assert run_of(local_stack, upload, module).status == "submitted"
    (job,) = local_stack.batch_jobs()
    assert job["arrayProperties"]["size"] == 6
    table = RecordQueries(local_stack.client("dynamodb"), local_stack.table)
    kept = sweep_beside(table, job["jobId"])
    assert kept == {"experiment_file": EXPERIMENTS, "seed": ["1", "2"]}, "kept for the report's children"
    assert list(kept) == ["experiment_file", "seed"], "in the spec's order, which each child's values follow"

    # What each child would run: the command exactly as sent, its index set as Batch sets it.
    for index in range(6):
        values = sweep.child_values({"experiment_file": EXPERIMENTS, "seed": ["1", "2"]}, index)
        child = [*command[:4], "printf", "%s\\0", *command[5:]]  # `printf` in place of `python`
        seen = subprocess.run(
            child,
            env={"PATH": os.environ["PATH"], "AWS_BATCH_JOB_ARRAY_INDEX": str(index)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\0")[:-1]
        assert seen == ["train.py", "--experiment", values["experiment_file"], "--out=Ref::output_path"]


def test_a_sweep_whose_definition_has_no_command_is_rejected_with_its_receipt(
    local_stack: LocalStack, definitions: dict[str, str], submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    sent = capture_submissions(module)
    upload = local_stack.upload(
        "incoming/vision/bare.yaml", SWEEP_WITHOUT_COMMAND.replace(b"job_definition: sweeper", b"job_definition: bare")
    )

    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}

    assert sent == []
    run = run_of(local_stack, upload, module)
    assert run.status == "rejected"
    (problem,) = run.problems
    assert (problem.code, problem.path) == ("sweep_definition_command", "sweep")
    assert "give `command` in the spec" in problem.message
    receipt = local_stack.receipt("receipts/vision/bare.yaml.json")
    assert receipt["status"] == "rejected"
    assert receipt["problems"][0]["code"] == "sweep_definition_command"
    assert [event["body"]["type"] for event in local_stack.published_events()] == ["run.rejected"]


def test_a_swept_parameter_fills_the_specs_own_command_per_child(
    local_stack: LocalStack, definitions: dict[str, str], submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    sent = capture_submissions(module)
    spec = SWEEP_WITHOUT_COMMAND + b"command: [python, evaluate.py, --experiment=Ref::experiment_file]\n"
    upload = local_stack.upload("incoming/vision/evaluate.yaml", spec)

    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}

    (request,) = sent
    assert request["containerOverrides"]["command"][4:] == [
        "python",
        "evaluate.py",
        f"--experiment={sweep.marker('experiment_file')}",
    ]
    assert request["arrayProperties"] == {"size": 6}


def test_a_name_without_revision_reads_the_newest_active_revision(
    local_stack: LocalStack, definitions: dict[str, str]
) -> None:
    newer = register(local_stack, "vision-sweeper", ["python", "train_v2.py"])
    assert newer.endswith(":2")
    gateway = BatchGateway(local_stack.client("batch"))
    assert gateway.definition_command(f"{ARN}/vision-sweeper").command == ("python", "train_v2.py")
    assert gateway.definition_command(definitions["sweeper"]).command == tuple(TRAINER_COMMAND)
    assert gateway.definition_command(f"{ARN}/vision-nothing").command is None


def test_a_definition_named_without_revision_runs_the_revision_whose_command_was_wrapped(
    local_stack: LocalStack, definitions: dict[str, str], submit_function: tuple[ModuleType, Invoke]
) -> None:
    """The platform config may name a definition without its revision; Batch then runs the latest. A
    revision registered while batchdrop keeps the older one's command must not run with that command."""
    config = local_stack.client("s3").get_object(Bucket=local_stack.bucket, Key="config/platform.yaml")
    text = config["Body"].read().decode().replace(definitions["sweeper"], f"{ARN}/vision-sweeper")
    local_stack.client("s3").put_object(Bucket=local_stack.bucket, Key="config/platform.yaml", Body=text.encode())
    module, submit = submit_function
    sent = capture_submissions(module)
    first = local_stack.upload("incoming/vision/first.yaml", SWEEP_WITHOUT_COMMAND)
    assert submit(local_stack.s3_event(first)) == {"batchItemFailures": []}

    register(local_stack, "vision-sweeper", ["python", "train_v2.py"])
    second = local_stack.upload("incoming/vision/second.yaml", SWEEP_WITHOUT_COMMAND)
    assert submit(local_stack.s3_event(second)) == {"batchItemFailures": []}

    for request in sent:  # the second read its command from the gateway's cache, so revision 1 still
        assert request["jobDefinition"] == definitions["sweeper"] == f"{ARN}/vision-sweeper:1"
        assert request["containerOverrides"]["command"][4:6] == ["python", "train.py"]
    assert len(sent) == 2


def test_a_definition_given_a_command_is_wrapped_by_the_next_drop(
    local_stack: LocalStack, definitions: dict[str, str], submit_function: tuple[ModuleType, Invoke]
) -> None:
    module, submit = submit_function
    sent = capture_submissions(module)
    bare = SWEEP_WITHOUT_COMMAND.replace(b"job_definition: sweeper", b"job_definition: bare")
    config = local_stack.client("s3").get_object(Bucket=local_stack.bucket, Key="config/platform.yaml")
    text = config["Body"].read().decode().replace(definitions["bare"], f"{ARN}/vision-bare")
    local_stack.client("s3").put_object(Bucket=local_stack.bucket, Key="config/platform.yaml", Body=text.encode())
    refused = local_stack.upload("incoming/vision/bare.yaml", bare)
    assert submit(local_stack.s3_event(refused)) == {"batchItemFailures": []}
    assert run_of(local_stack, refused, module).status == "rejected"

    fixed = register(local_stack, "vision-bare", ["python", "fixed.py"])
    again = local_stack.upload("incoming/vision/bare-again.yaml", bare)
    assert submit(local_stack.s3_event(again)) == {"batchItemFailures": []}

    assert run_of(local_stack, again, module).status == "submitted", "no answer of 'no command' was kept"
    (request,) = sent
    assert request["jobDefinition"] == fixed
    assert request["containerOverrides"]["command"][4:] == ["python", "fixed.py"]


def test_describe_job_definitions_throttled_beneath_botocore_is_retried_by_the_gateway(
    faults: FaultProxy,
    local_stack: LocalStack,
    definitions: dict[str, str],
    submit_function: tuple[ModuleType, Invoke],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, submit = submit_function
    waits: list[float] = []
    monkeypatch.setattr(module.submitter.batch, "sleep", waits.append)
    faults.throttle("batch", "DescribeJobDefinitions", times=2)
    upload = local_stack.upload("incoming/vision/experiments.yaml", SWEEP_WITHOUT_COMMAND)

    assert submit(local_stack.s3_event(upload)) == {"batchItemFailures": []}

    assert faults.count("batch", "DescribeJobDefinitions") == 3, "each attempt the gateway's, none botocore's"
    assert len(waits) == 2
    assert run_of(local_stack, upload, module).status == "submitted"

    again = local_stack.upload("incoming/vision/experiments-again.yaml", SWEEP_WITHOUT_COMMAND)
    assert submit(local_stack.s3_event(again)) == {"batchItemFailures": []}
    assert faults.count("batch", "DescribeJobDefinitions") == 3, "the next drop's definition came from the cache"


def test_describe_job_definitions_that_keeps_failing_returns_the_drop_for_a_later_try(
    faults: FaultProxy,
    local_stack: LocalStack,
    definitions: dict[str, str],
    submit_function: tuple[ModuleType, Invoke],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, submit = submit_function
    monkeypatch.setattr(module.submitter.batch, "sleep", lambda _: None)
    gateway = module.submitter.batch
    faults.fail_before("batch", "DescribeJobDefinitions", times=gateway.max_attempts)
    upload = local_stack.upload("incoming/vision/experiments.yaml", SWEEP_WITHOUT_COMMAND)

    event = local_stack.s3_event(upload)
    assert len(submit(event)["batchItemFailures"]) == 1, "retried, not rejected"
    assert faults.count("batch", "DescribeJobDefinitions") == gateway.max_attempts
    assert faults.count("batch", "SubmitJob") == 0
    assert run_of(local_stack, upload, module).status == "submitting"

    # The redelivery of the same message, once Batch answers again, resumes the run.
    as_if_redelivered(local_stack.client("dynamodb"), local_stack.table)
    assert submit(event) == {"batchItemFailures": []}
    assert run_of(local_stack, upload, module).status == "submitted"
    assert faults.count("batch", "SubmitJob") == 1
