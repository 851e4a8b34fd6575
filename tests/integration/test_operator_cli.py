"""The operator command line against the whole control plane on the embedded AWS: `batchdrop
submit/status/list/cancel/logs --stack batchdrop-local --endpoint-url …`, as a user types them,
while the local Lambda runtime runs the functions and the local Batch plays the jobs' lives.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batchdrop_local.batch_lifecycle import JobFate, Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.emulator import EmbeddedAws

from tests.integration.operator_cli import Cli, spec_file
from tests.recordkit import pipeline_spec

pytestmark = pytest.mark.integration

SCENARIO = Scenario(
    fates=[
        JobFate(spec="cli-fails", step="main", outcome="fail", exit_code=2),
        JobFate(spec="cli-pipeline", step="prep", runs_for=120),  # running until it is cancelled
        JobFate(spec="cli-sweep", step="train", outcome="fail", exit_code=3),  # every child fails
        JobFate(spec="cli-spot", step="main", outcome="spot_reclaim"),  # attempt 1 reclaimed, attempt 2 succeeds
        JobFate(spec="cli-ddp", step="main", outcome="fail", exit_code=2, fail_node=2),  # node 2 fails, node 0 with it
    ],
    seconds={"queued": 0.3, "starting": 0.3, "running": 2.0, "child": 0.5},
)
CPU_SPEC = """\
version: 1
name: {name}
team: vision
job_definition: trainer
command: [python, report.py]
resources: {{vcpus: 2, memory_mib: 4096}}
"""
DDP_SPEC = """\
version: 1
name: cli-ddp
team: vision
job_definition: ddp
nodes: {count: 3}
command: [torchrun, train.py]
resources: {vcpus: 8, memory_mib: 30000, gpus: 1}
"""
PIPELINE_SPEC = pipeline_spec(
    "cli-pipeline", ["prep", "train"], train={"resources": "{vcpus: 8, memory_mib: 30000, gpus: 1}"}
).decode()
SWEEP_SPEC = """\
version: 1
name: cli-sweep
team: vision
job_definition: trainer
steps:
  - name: train
    command: [python, train.py]
    resources: {vcpus: 2, memory_mib: 4096}
    sweep: {lr: ["0.1", "0.01"], batch: ["32", "64"]}
"""


@pytest.fixture(scope="module")
def plane(emulator: EmbeddedAws) -> Iterator[ControlPlane]:
    with ControlPlane(emulator, scenario=SCENARIO, speed=1.0).running() as running:
        yield running


def test_submit_wait_prints_the_run_and_exits_0_when_it_succeeds(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("submit", spec_file(tmp_path, "cli-succeeds", CPU_SPEC.format(name="cli-succeeds")), "--wait")

    assert code == 0, err
    assert "uploaded" in err
    assert "incoming/vision/cli-succeeds.yaml" in err
    assert "✓ run " in out
    assert "cli-succeeds submitted for team vision, 1 job(s)" in out
    assert "cpu queue cpu-shared" in out
    assert "— SUCCEEDED" in out
    assert "main" in out
    assert "1/1" in out
    run_id = out.split("✓ run ")[1].split(":")[0]

    status = cli.json("status", run_id)
    assert status["run"]["status"] == "succeeded"
    assert status["run"]["usage"]["vcpu_hours"] > 0
    [job] = status["jobs"]
    assert [entry["status"] for entry in job["history"]] == [
        "SUBMITTED",
        "PENDING",
        "RUNNABLE",
        "STARTING",
        "RUNNING",
        "SUCCEEDED",
    ]
    assert job["exit_code"] == 0
    assert job["log_links"][0]["url"].startswith("https://")
    assert "claim_owner" not in status["run"]

    code, logs, _ = cli("logs", run_id)
    assert code == 0
    assert "==> main · attempt 1 · SUCCEEDED" in logs
    assert "epoch 3/3 loss=" in logs

    code, logs, _ = cli("logs", run_id, "--json")  # one JSON object per line
    assert code == 0
    records = [json.loads(line) for line in logs.splitlines()]
    assert {(record["step"], record["attempt"], record["index"]) for record in records} == {("main", 1, None)}
    assert any("epoch 3/3 loss=" in record["message"] for record in records)
    assert all(record["at"].endswith("+00:00") for record in records)


def test_logs_follow_streams_a_running_job_until_it_ends(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("submit", spec_file(tmp_path, "cli-tail", CPU_SPEC.format(name="cli-tail")))
    assert code == 0, err
    run_id = out.split("✓ run ")[1].split(":")[0]

    code, logs, err = cli("logs", run_id, "--follow", "--timeout", "60")

    assert code == 0, err
    assert "==> main · attempt 1" in logs
    assert "epoch 3/3 loss=" in logs  # written when the job ended: followed to its end
    assert cli.json("status", run_id)["run"]["status"] == "succeeded"

    code, _, err = cli("logs", run_id, "--follow", "--timeout", "0")  # an ended job: printed, nothing to wait for
    assert code == 0, err


def test_submit_follow_streams_state_changes_and_exits_3_when_the_run_fails(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("submit", spec_file(tmp_path, "cli-fails", CPU_SPEC.format(name="cli-fails")), "--follow")

    assert code == 3, err
    lines = out.splitlines()
    changes = [line.split()[2] for line in lines if line[:2].isdigit() and " main " in line]
    assert changes == ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "FAILED"]
    assert "— FAILED" in out
    assert "failure: the program exited with code 2" in out
    assert "reason    step main: the program exited with code 2" in out


def test_a_rejected_spec_exits_1_with_its_problems_and_the_receipt(cli: Cli, tmp_path: Path) -> None:
    bad = spec_file(tmp_path, "cli-typo", CPU_SPEC.format(name="cli-typo").replace("resources", "resorces"))

    code, out, _ = cli("submit", bad, "--wait")
    assert code == 1
    assert "was rejected" in out
    assert "resorces" in out

    code, out, _ = cli("submit", bad, "--team", "vision", "--json")
    assert code == 1
    receipt = json.loads(out)
    assert receipt["schema"] == "batchdrop.receipt/v1"
    assert receipt["status"] == "rejected"
    assert receipt["problems"][0]["path"] == "resorces"

    code, _, err = cli("logs", receipt["run_id"])
    assert code == 2
    assert "has no jobs (rejected)" in err


def test_list_shows_runs_newest_first_by_team_status_and_time(cli: Cli, tmp_path: Path) -> None:
    ids = []
    for name in ("cli-list-a", "cli-list-b"):
        code, out, err = cli("submit", spec_file(tmp_path, name, CPU_SPEC.format(name=name)))
        assert code == 0, err
        ids.append(out.split("✓ run ")[1].split(":")[0])

    listed = cli.json("list", "--team", "vision", "--since", "10m")
    runs = [run["run_id"] for run in listed["runs"]]
    assert runs.index(ids[1]) < runs.index(ids[0])  # newest first
    assert all(run["team"] == "vision" for run in listed["runs"])

    two = cli.json("list", "--team", "vision", "--limit", "1")
    assert len(two["runs"]) == 1
    assert two["more"] is True

    every_team = cli.json("list")  # the teams come from the stack's platform config
    assert {run["run_id"] for run in every_team["runs"]} >= set(ids)

    submitted = cli.json("list", "--team", "vision", "--status", "rejected")
    assert all(run["status"] == "rejected" for run in submitted["runs"])

    code, out, _ = cli("list", "--team", "vision")
    assert out.splitlines()[0].split() == ["RECEIVED", "(UTC)", "RUN", "TEAM", "SPEC", "STATUS", "JOBS"]
    assert ids[0] in out

    code, _, err = cli("list", "--since", "last tuesday")
    assert code == 2
    assert "--since" in err


def test_cancel_terminates_the_running_step_cancels_the_queued_one_and_records_who(
    cli: Cli, plane: ControlPlane, tmp_path: Path
) -> None:
    code, out, err = cli("submit", spec_file(tmp_path, "cli-pipeline", PIPELINE_SPEC))
    assert code == 0, err
    run_id = out.split("✓ run ")[1].split(":")[0]
    _wait_for(lambda: _step_status(cli, run_id, "prep") == "RUNNING")

    code, out, err = cli("cancel", run_id, "--reason", "wrong learning rate")

    assert code == 0, err
    assert "prep" in out
    assert "RUNNING    terminated" in out
    assert "train" in out
    assert "cancelled" in out
    _wait_for(lambda: cli.json("status", run_id)["run"]["status"] == "cancelled")
    status = cli.json("status", run_id)
    run = status["run"]
    assert run["cancelled_by"].startswith("arn:aws:")
    assert run["cancel_reason"] == "wrong learning rate"
    prep, train = status["jobs"]
    assert prep["status"] == "FAILED"  # Batch's word
    assert prep["shown_status"] == "CANCELLED"  # batchdrop's
    assert prep["failure_class"] == "cancelled"
    assert "wrong learning rate" in prep["failure"]
    assert prep["cancelled_by"] == run["cancelled_by"]
    assert train["status"] == "FAILED"
    assert any("Cancelled" in message.text for message in plane.slack.received if message.channel == "vision")

    code, out, _ = cli("status", run_id)
    assert [line.split()[2] for line in out.splitlines() if line.startswith("  prep ")] == ["CANCELLED"]
    assert "FAILED" not in out

    code, out, err = cli("cancel", run_id)  # nothing left to stop: not a usage error
    assert code == 0, err
    assert f"run {run_id} already ended: cancelled" in out
    code, out, _ = cli("cancel", run_id, "--json")
    assert (code, json.loads(out)["already_ended"]) == (0, "cancelled")


def test_unknown_runs_and_stacks_are_usage_errors(cli: Cli) -> None:
    code, _, err = cli("status", "nosuchrun")
    assert code == 2
    assert "no run 'nosuchrun'" in err

    code, _, err = cli("--stack", "not-deployed", "status", "whatever")
    assert code == 2
    assert "no stack 'not-deployed'" in err


def _step_status(cli: Cli, run_id: str, step: str) -> str | None:
    status = cli.json("status", run_id)
    return next((job["status"] for job in status["jobs"] if job["step"] == step), None)


def _wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_sweeps_children_have_their_logs_and_follow_times_their_progress_in_order(cli: Cli, tmp_path: Path) -> None:
    code, out, err = cli("submit", spec_file(tmp_path, "cli-sweep", SWEEP_SPEC), "--follow")

    assert code == 3, err
    timed = [line for line in out.splitlines() if line[:2].isdigit() and line[2] == ":"]
    children = [line for line in timed if "children:" in line]
    assert children, out
    assert all(line.split()[1] == "train" for line in children)  # every progress line has its time
    assert [line[:8] for line in timed] == sorted(line[:8] for line in timed), "in the order they happened"
    assert "4 FAILED" in children[-1]
    run_id = out.split("✓ run ")[1].split(":")[0]

    code, logs, err = cli("logs", run_id)  # failed children, by default
    assert code == 0, err
    assert "has not started yet" not in logs
    heads = [line for line in logs.splitlines() if line.startswith("==> ")]
    assert [head.split()[1] for head in heads] == ["train[0]", "train[1]", "train[2]", "train[3]"]

    code, logs, err = cli("logs", run_id, "--step", "train", "--index", "2")
    assert code == 0, err
    assert [line.split()[1] for line in logs.splitlines() if line.startswith("==> ")] == ["train[2]"]

    code, _, err = cli("logs", run_id, "--index", "4")
    assert code == 2
    assert "children 0 to 3: there is no --index 4" in err


def test_list_says_a_team_is_not_in_the_platform_config_and_still_lists_its_rejected_runs(
    cli: Cli, tmp_path: Path
) -> None:
    spec = spec_file(tmp_path, "cli-stranger", CPU_SPEC.format(name="cli-stranger"))
    code, out, _ = cli("submit", spec, "--team", "strangers", "--json")
    assert code == 1
    run_id = json.loads(out)["run_id"]

    code, out, err = cli("list", "--team", "strangers")

    assert code == 0, err
    assert "team strangers is not in the platform config (its teams: " in err
    assert run_id in out
    assert "rejected" in out


# ---------------------------------------------------------------------- submit: refused, unanswered (issue 12)

IDLE_STACK = "batchdrop-idle"
"""A stand-in stack whose bucket nothing watches: an upload there is never decided."""


@pytest.fixture(scope="module")
def idle_stack(plane: ControlPlane) -> dict[str, str]:
    """Made before the `cli` fixture records calls (a wider-scoped fixture comes first): its setup is not
    the command's. The stack has the real stack's queues and a `Stage`, as a deployed one has."""
    s3 = plane.aws.client("s3")
    bucket = "batchdrop-idle-jobs"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    outputs = {
        "JobsBucketName": bucket,
        "RecordsTableName": plane.stack.outputs["RecordsTableName"],
        "IntakeQueueUrl": plane.stack.outputs["IntakeQueueUrl"],
        "IntakeDeadLetterQueueUrl": plane.stack.outputs["IntakeDeadLetterQueueUrl"],
    }
    template = {
        "Parameters": {"Stage": {"Type": "String"}},
        "Resources": {
            "StandIn": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/{IDLE_STACK}/stand-in", "Type": "String", "Value": "outputs only"},
            }
        },
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    plane.aws.client("cloudformation").create_stack(
        StackName=IDLE_STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "Stage", "ParameterValue": "idle"}],
    )
    return outputs


def test_submit_refuses_a_file_the_stack_would_not_run_and_uploads_nothing(
    cli: Cli, plane: ControlPlane, tmp_path: Path
) -> None:
    notes = tmp_path / "cli-notes.txt"
    notes.write_text(CPU_SPEC.format(name="cli-notes"))

    code, out, err = cli("submit", str(notes))

    assert code == 1, err
    assert "not uploaded" in out
    assert "reads only files ending in .yaml, .yml or .json (in any case)" in out
    assert cli.calls == set()  # refused before asking AWS anything

    shouting = tmp_path / "CLI-SHOUTS.YAML"  # any case is the stack's too: it runs
    shouting.write_text(CPU_SPEC.format(name="cli-shouts"))
    code, out, err = cli("submit", str(shouting))
    assert code == 0, err
    assert "cli-shouts submitted for team vision" in out
    listed = plane.aws.client("s3").list_objects_v2(Bucket=plane.bucket, Prefix="incoming/vision/cli-notes")
    assert listed.get("KeyCount", 0) == 0  # (after the last command: the test's own calls are not the command's)


def test_submit_without_a_receipt_in_time_says_what_to_check_and_how_to_look_later(
    idle_stack: dict[str, str], cli: Cli, plane: ControlPlane, tmp_path: Path
) -> None:
    spec = spec_file(tmp_path, "cli-unanswered", CPU_SPEC.format(name="cli-unanswered"))

    code, out, err = cli("submit", spec, "--stack", IDLE_STACK, "--timeout", "1")

    assert code == 2
    assert "Traceback" not in err
    run_id = err.split("(run ")[1].split(")")[0]  # said when it was uploaded
    assert f"no receipt for s3://{idle_stack['JobsBucketName']}/incoming/vision/cli-unanswered.yaml after 1 s" in err
    assert f"the stack has not decided run {run_id}" in err
    assert "extension the stack reads" not in err, "checked before uploading: it cannot be why"
    assert idle_stack["IntakeQueueUrl"] in err
    assert idle_stack["IntakeDeadLetterQueueUrl"] in err
    assert "/aws/lambda/batchdrop-idle-submit" in err
    assert f"batchdrop status {run_id}" in err
    assert "batchdrop list --team vision" in err
    assert out == ""

    code, out, err = cli("submit", spec, "--stack", IDLE_STACK, "--timeout", "1", "--json")
    assert code == 2
    document = json.loads(out)
    assert document["receipt"] is None
    assert document["source"]["key"] == "incoming/vision/cli-unanswered.yaml"


def test_status_shows_who_dropped_the_run_and_each_attempt_of_a_retried_job(cli: Cli, tmp_path: Path) -> None:
    spot = CPU_SPEC.format(name="cli-spot") + "retries: {attempts: 2, on_spot_interruption: true}\n"
    code, out, err = cli("submit", spec_file(tmp_path, "cli-spot", spot), "--wait")
    assert code == 0, err
    run_id = out.split("✓ run ")[1].split(":")[0]

    code, out, err = cli("status", run_id)

    assert code == 0, err
    assert "dropped by AWS:" in out  # the S3 notification's principal
    assert "attempt 1 failed: the instance was reclaimed (spot interruption) (Host EC2 (instance i-0" in out
    assert "attempt 2: succeeded, exit 0" in out
    status = cli.json("status", run_id)
    assert status["run"]["dropped_by"].startswith("AWS:")
    [job] = status["jobs"]
    assert [(end["attempt"], end["failure_class"], end["exit_code"]) for end in job["attempt_ends"]] == [
        (1, "spot_reclaim", None),
        (2, None, 0),
    ]
    listed = cli.json("list", "--team", "vision", "--since", "10m")
    assert next(run for run in listed["runs"] if run["run_id"] == run_id)["dropped_by"] == status["run"]["dropped_by"]


def test_a_multinode_jobs_failed_node_is_told_by_status_and_its_log_by_logs_node(cli: Cli, tmp_path: Path) -> None:
    """docs/multinode.md: node 2 exits 2 and takes the main node down; status says which node failed and
    why, logs --node 2 prints that node's own log."""
    code, out, err = cli("submit", spec_file(tmp_path, "cli-ddp", DDP_SPEC), "--follow")
    assert code == 3, err
    run_id = out.split("✓ run ")[1].split(":")[0]
    deadline = time.monotonic() + 30
    while True:  # the nodes' ends are tracked in their own batches: the last may follow the job's end
        code, status, err = cli("status", run_id)
        if "1 succeeded, 2 failed" in status or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "3 nodes: 1 succeeded, 2 failed (node 0: " in status, status  # from the node ends its record keeps
    assert "node 2: the program exited with code 2)" in status
    told = [m.text for m in cli.plane.slack.received if "cli-ddp" in m.text and m.text.startswith("❌ Failed")]
    assert told, [m.text for m in cli.plane.slack.received]
    assert "3 nodes: " in told[-1], told  # Slack's message lists the nodes
    assert "node 2" in told[-1], told
    assert "node 2: attempt 1 failed: the program exited with code 2" in status
    code, logs, err = cli("logs", run_id, "--node", "2")
    assert code == 0, err
    assert "==> main node 2 · attempt 1 · FAILED" in logs
    assert "exited with code 2" in logs
    code, _, err = cli("logs", run_id, "--node", "3")
    assert code == 2
    assert "there is no --node 3" in err
