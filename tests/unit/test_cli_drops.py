"""`batchdrop submit` refuses, before uploading, a file the stack would not run as meant; says what to
check when no receipt comes; and `batchdrop status` shows who dropped a run and how each attempt ended."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchdrop.gateways.bucket import DropLocation, JobsBucket, SpecUnreadable
from batchdrop.spec.documents import MAX_DOCUMENT_BYTES
from batchdrop.store.records import AttemptEnd, SpecSource
from batchdrop.submit.intake import misplaced_problems
from batchdrop.track.failures import retried_because
from batchdrop_cli.drops import drop_problems, no_receipt_advice
from batchdrop_cli.main import EXIT_INVALID, main
from batchdrop_cli.operations import StackResources
from batchdrop_cli.run_views import RunView
from batchdrop_cli.stack import _print_view, attempt_line
from batchdrop_cli.uploads import Upload
from tests.unit.test_telling import job, run

SPEC = "version: 1\nname: x\nteam: vision\njob_definition: trainer\ncommand: [python, x.py]\n"


def _submit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    # No stack is reachable here (no --endpoint-url, no credentials needed): a refusal asks no AWS.
    code = main(["submit", *argv, "--stack", "no-such-stack", "--endpoint-url", "http://127.0.0.1:9"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", ["train.txt", "train", "train.yaml.bak", "train.toml"])
def test_submit_refuses_an_extension_the_stack_does_not_read_without_uploading(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    spec = tmp_path / name
    spec.write_text(SPEC)

    code, out, err = _submit(capsys, str(spec))

    assert code == EXIT_INVALID
    assert "not uploaded" in out
    assert "reads only files ending in .yaml, .yml or .json (in any case)" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["RUN.YAML", "train.Yml", "a.JSON"])
def test_any_case_of_an_accepted_extension_is_the_stacks_too(name: str) -> None:
    assert drop_problems(b"x", "vision", name) == []
    assert misplaced_problems(f"incoming/vision/{name}") == []  # the stack's rule, which the command asks


def test_submit_refuses_a_file_over_the_stacks_size_limit_and_an_empty_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(SPEC.encode() + b"#" * MAX_DOCUMENT_BYTES)
    code, out, _ = _submit(capsys, str(big))
    assert code == EXIT_INVALID
    assert f"it may be at most {MAX_DOCUMENT_BYTES // 1024} KiB" in out

    empty = tmp_path / "empty.yaml"
    empty.write_bytes(b"")
    code, out, _ = _submit(capsys, str(empty), "--team", "vision")
    assert code == EXIT_INVALID
    assert "the file is empty" in out


@pytest.mark.parametrize("size", [0, MAX_DOCUMENT_BYTES + 1])
def test_submit_and_the_stack_refuse_the_same_sizes_in_the_same_words(size: int) -> None:
    bucket = JobsBucket(client=None)  # type: ignore[arg-type]  # the notification's size decides: no request
    with pytest.raises(SpecUnreadable) as refused_by_the_stack:
        bucket.read_spec(SpecSource(bucket="b", key="incoming/vision/a.yaml"), size)
    assert drop_problems(b"#" * size, "vision", "a.yaml") == [refused_by_the_stack.value.problem]


@pytest.mark.parametrize("size", [1, MAX_DOCUMENT_BYTES])
def test_submit_refuses_no_size_the_stack_reads(size: int) -> None:
    assert drop_problems(b"#" * size, "vision", "a.yaml") == []


def test_submit_refuses_a_file_without_a_team_with_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "no-team.yaml"
    spec.write_text("version: 1\nname: x\njob_definition: trainer\ncommand: [true]\n")

    code, out, _ = _submit(capsys, str(spec))
    assert code == EXIT_INVALID
    assert "no team: say `team:` in the spec or pass --team" in out

    code, out, _ = _submit(capsys, str(spec), "--json")
    document = json.loads(out)
    assert code == EXIT_INVALID
    assert document["uploaded"] is False
    assert [problem["code"] for problem in document["problems"]] == ["no_team"]


def test_submit_refuses_a_key_the_stack_would_read_otherwise(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = tmp_path / "train.yaml"
    spec.write_text(SPEC)

    code, out, _ = _submit(capsys, str(spec), "--as", "experiments/lr.txt")  # --as is the name the stack reads
    assert code == EXIT_INVALID
    assert "`lr.txt` is not one" in out

    code, out, _ = _submit(capsys, str(spec), "--team", "vision/extra")
    assert code == EXIT_INVALID
    assert "would run the file as team `vision`" in out

    code, out, _ = _submit(capsys, str(spec), "--as", "experiments/")
    assert code == EXIT_INVALID
    assert "ends in `/`" in out


def test_an_unreadable_file_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _submit(capsys, str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "cannot read" in err


def _upload(version_id: str | None = "v1") -> Upload:
    source = SpecSource(bucket="jobs", key="incoming/vision/train.yaml", version_id=version_id, etag="e")
    return Upload(source=source, location=DropLocation(team="vision", relative_path="train.yaml"), run_id="r123")


def test_no_receipt_says_what_to_check_by_the_stacks_own_names_and_how_to_look_later() -> None:
    resources = StackResources(
        bucket="jobs",
        table="records",
        intake_queue_url="https://sqs.eu-west-1.amazonaws.com/1/batchdrop-prod-intake",
        intake_dead_letters_url="https://sqs.eu-west-1.amazonaws.com/1/batchdrop-prod-intake-dlq",
        stage="prod",
    )

    advice = no_receipt_advice(_upload(), resources, waited=120)

    assert "no receipt for s3://jobs/incoming/vision/train.yaml after 120 s" in advice
    assert "run r123" in advice
    assert "extension the stack reads" not in advice, "checked before uploading: it cannot be why"
    assert "get-bucket-notification-configuration --bucket jobs" in advice
    assert "https://sqs.eu-west-1.amazonaws.com/1/batchdrop-prod-intake " in advice
    assert "https://sqs.eu-west-1.amazonaws.com/1/batchdrop-prod-intake-dlq" in advice
    assert "/aws/lambda/batchdrop-prod-submit" in advice
    assert "batchdrop status r123" in advice
    assert "batchdrop list --team vision" in advice
    assert "s3://jobs/receipts/vision/train.yaml.json" in advice


def test_no_receipt_advice_names_what_it_cannot_know() -> None:
    advice = no_receipt_advice(_upload(version_id=None), StackResources(bucket="jobs", table="t"), waited=5)
    assert "/aws/lambda/batchdrop-<stage>-submit" in advice
    assert "output IntakeQueueUrl" in advice
    assert "the bucket is not versioned" in advice
    assert "aws s3 cp s3://jobs/receipts/vision/train.yaml.json -" in advice


SPOT = AttemptEnd(
    attempt=1,
    status_reason="Host EC2 (instance i-0bd1e2f3a4b5c6d7e) terminated.",
    failure_class="spot_reclaim",
    failure="the instance was reclaimed (spot interruption)",
)
SUCCESS = AttemptEnd(attempt=2, exit_code=0, status_reason="Essential container in task exited")
OOM = AttemptEnd(
    attempt=1,
    exit_code=137,
    status_reason="Essential container in task exited",
    reason="OutOfMemoryError: Container killed due to memory usage",
    failure_class="out_of_memory",
    failure="out of memory (exit code 137)",
)


def test_each_attempt_says_how_it_ended_in_words_with_its_exit_code_and_reason() -> None:
    assert attempt_line(SPOT) == (
        "attempt 1 failed: the instance was reclaimed (spot interruption) "
        "(Host EC2 (instance i-0bd1e2f3a4b5c6d7e) terminated.)"
    )
    assert attempt_line(SUCCESS) == "attempt 2: succeeded, exit 0"
    assert attempt_line(OOM) == (
        "attempt 1 failed: out of memory (exit code 137) (Essential container in task exited; "
        "OutOfMemoryError: Container killed due to memory usage)"
    )
    assert attempt_line(SPOT.model_copy(update={"node": 2})).startswith("node 2: attempt 1 failed: the instance")
    assert attempt_line(SPOT) == retried_because(SPOT) + " (Host EC2 (instance i-0bd1e2f3a4b5c6d7e) terminated.)", (
        "a failed attempt in the words of tracking's retry"
    )


def test_status_shows_who_dropped_the_run_and_the_attempts_of_a_retried_or_failed_job(
    capsys: pytest.CaptureFixture[str],
) -> None:
    retried = job(step="train", status="SUCCEEDED", attempts=2, max_attempts=3, attempt_ends=[SPOT, SUCCESS])
    failed = job(job_id="j2", step="eval", status="FAILED", attempts=1, attempt_ends=[OOM])
    once = job(job_id="j3", step="report", status="SUCCEEDED", attempts=1, attempt_ends=[SUCCESS])
    view = RunView(run=run("failed", dropped_by="AWS:AROA3EXAMPLEROLEID:maria.garcia"), jobs=[retried, failed, once])

    _print_view(view)
    out = capsys.readouterr().out

    assert "dropped by AWS:AROA3EXAMPLEROLEID:maria.garcia" in out
    assert "  train:\n    attempt 1 failed: the instance was reclaimed" in out
    assert "    attempt 2: succeeded, exit 0" in out
    assert "    attempt 1 failed: out of memory (exit code 137)" in out
    assert "report:" not in out  # one attempt that succeeded: nothing to tell
    document = view.as_json()
    assert document["run"]["dropped_by"] == "AWS:AROA3EXAMPLEROLEID:maria.garcia"
    assert [end["attempt"] for end in document["jobs"][0]["attempt_ends"]] == [1, 2]
    assert document["jobs"][0]["attempt_ends"][0]["failure_class"] == "spot_reclaim"


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("succeeded", "  report    s3://{bucket}/runs/{run_id}/report.html"),
        ("failed", "  report    s3://{bucket}/runs/{run_id}/report.html"),
        ("running", "  report    batchdrop report {run_id} --open"),
        ("rejected", "  report    batchdrop report {run_id} --open"),
    ],
)
def test_status_says_where_the_runs_report_is(capsys: pytest.CaptureFixture[str], status: str, shown: str) -> None:
    """An ended run's report was written by the report function; a run still going (or rejected, which
    never ends as a run) has one made on request."""
    view = RunView(run=run(status), jobs=[])
    _print_view(view)
    assert shown.format(bucket=view.run.source.bucket, run_id=view.run.run_id) in capsys.readouterr().out.splitlines()
