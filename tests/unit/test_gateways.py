"""The AWS gateways, against botocore's Stubber (no network): what they do when AWS misbehaves."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from batchdrop.events.contract import RunRejected
from batchdrop.gateways.batch import BATCH_CLIENT_CONFIG, BatchGateway, BatchRefused, BatchUnavailable
from batchdrop.gateways.bucket import NO_TEAM, DropLocation, JobsBucket, SpecUnreadable, locate, locate_drop
from batchdrop.gateways.topic import EventPublisher
from batchdrop.store.claims import RunClaims
from batchdrop.store.items import RecordsUnavailable
from batchdrop.store.records import RunRecord, SpecSource
from batchdrop.track.early_retry import EarlyRetry, Returned
from batchdrop.wiring.clients import STANDARD_CLIENT_CONFIG
from batchdrop.wiring.settings import SettingsInvalid, SubmitSettings, load_settings

QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/cpu-shared"
REQUEST = {"jobName": "nightly-main-abc", "jobQueue": QUEUE, "jobDefinition": "arn:aws:batch:x"}


def client(service: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def batch() -> Iterator[tuple[BatchGateway, Stubber, list[float]]]:
    batch_client = client("batch")
    waits: list[float] = []
    with Stubber(batch_client) as stubber:
        yield BatchGateway(batch_client, sleep=waits.append), stubber, waits
        stubber.assert_no_pending_responses()


def listing(*jobs: tuple[str, str, int]) -> dict[str, Any]:
    return {"jobSummaryList": [{"jobId": job_id, "jobName": name, "createdAt": at} for job_id, name, at in jobs]}


def test_throttled_submit_is_retried_with_growing_jittered_waits(batch: tuple[BatchGateway, Stubber, list[float]]):
    gateway, stubber, waits = batch
    for _ in range(3):
        stubber.add_client_error("submit_job", "TooManyRequestsException", http_status_code=429)
    stubber.add_response("submit_job", {"jobId": "j-1", "jobName": REQUEST["jobName"], "jobArn": "arn"}, REQUEST)
    result = gateway.submit(REQUEST)
    assert (result.job_id, result.adopted) == ("j-1", False)
    assert len(waits) == 3
    assert all(0 <= wait <= gateway.base_delay * 2**attempt for attempt, wait in enumerate(waits))


def test_server_error_is_settled_by_finding_the_job_it_made(batch: tuple[BatchGateway, Stubber, list[float]]):
    gateway, stubber, _ = batch
    stubber.add_client_error("submit_job", "ServerException", http_status_code=500)
    stubber.add_response("list_jobs", listing(("j-7", REQUEST["jobName"], 10), ("j-7:0", REQUEST["jobName"], 11)))
    result = gateway.submit(REQUEST)
    assert (result.job_id, result.adopted) == ("j-7", True), "an array child is never the job"


def test_server_error_without_a_job_submits_again(batch: tuple[BatchGateway, Stubber, list[float]]):
    gateway, stubber, _ = batch
    stubber.add_client_error("submit_job", "ServerException", http_status_code=503)
    stubber.add_response("list_jobs", listing())
    stubber.add_response("submit_job", {"jobId": "j-2", "jobName": REQUEST["jobName"], "jobArn": "arn"})
    assert gateway.submit(REQUEST).job_id == "j-2"


def test_refusal_is_final_and_says_why(batch: tuple[BatchGateway, Stubber, list[float]]):
    gateway, stubber, _ = batch
    stubber.add_client_error("submit_job", "ClientException", "Job definition not found", http_status_code=400)
    with pytest.raises(BatchRefused, match="Job definition not found"):
        gateway.submit(REQUEST)


def test_endless_throttling_gives_up_for_a_later_retry(batch: tuple[BatchGateway, Stubber, list[float]]):
    gateway, stubber, _ = batch
    for _ in range(gateway.max_attempts):
        stubber.add_client_error("submit_job", "TooManyRequestsException", http_status_code=429)
    with pytest.raises(BatchUnavailable):
        gateway.submit(REQUEST)


def test_resumed_run_adopts_the_newest_job_of_its_name_across_pages(
    batch: tuple[BatchGateway, Stubber, list[float]],
):
    gateway, stubber, _ = batch
    stubber.add_response("list_jobs", {**listing(("j-old", REQUEST["jobName"], 1)), "nextToken": "t"})
    stubber.add_response("list_jobs", listing(("j-new", REQUEST["jobName"], 5), ("other", "other-name", 9)))
    result = gateway.submit(REQUEST, look_first=True)
    assert (result.job_id, result.adopted) == ("j-new", True)


TRAINER = "arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer"


def definition(revision: int, command: list[str] | None = None, **shape: Any) -> dict[str, Any]:
    """A DescribeJobDefinitions entry: a container definition with this command, or another shape."""
    entry: dict[str, Any] = {
        "jobDefinitionName": "vision-trainer",
        "jobDefinitionArn": f"{TRAINER}:{revision}",
        "revision": revision,
        "type": "container",
        **shape,
    }
    if not shape:
        entry["containerProperties"] = {"image": "trainer:1", **({"command": command} if command else {})}
    return entry


def test_a_job_definitions_command_is_read_once_for_a_revision(batch: tuple[BatchGateway, Stubber, list[float]]):
    gateway, stubber, _ = batch
    command = ["python", "train.py", "Ref::experiment_file"]
    stubber.add_response(
        "describe_job_definitions", {"jobDefinitions": [definition(3, command)]}, {"jobDefinitions": [f"{TRAINER}:3"]}
    )
    assert gateway.definition_command(f"{TRAINER}:3").command == tuple(command)
    assert gateway.definition_command(f"{TRAINER}:3").command == tuple(command), "a revision never changes"


def test_a_job_definition_without_revision_is_its_newest_active_one_read_again_after_a_while(
    batch: tuple[BatchGateway, Stubber, list[float]],
):
    gateway, stubber, _ = batch
    now = [0.0]
    gateway.clock = lambda: now[0]
    wanted = {"jobDefinitionName": "vision-trainer", "status": "ACTIVE"}
    stubber.add_response(
        "describe_job_definitions", {"jobDefinitions": [definition(4, ["new"])], "nextToken": "t"}, wanted
    )
    stubber.add_response(
        "describe_job_definitions", {"jobDefinitions": [definition(2, ["old"])]}, {**wanted, "nextToken": "t"}
    )
    assert gateway.definition_command(TRAINER).command == ("new",)
    now[0] = gateway.definition_ttl - 1
    assert gateway.definition_command(TRAINER).command == ("new",), "a burst of drops makes one call"
    stubber.add_response("describe_job_definitions", {"jobDefinitions": [definition(5, ["newer"])]}, wanted)
    now[0] = gateway.definition_ttl + 1
    assert gateway.definition_command(TRAINER).command == ("newer",), "a revision registered since is seen"


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ([definition(3)], "has no command (its image's own CMD would run"),
        (
            [definition(3, type="multinode", nodeProperties={"numNodes": 2, "mainNode": 0, "nodeRangeProperties": []})],
            "multi-node parallel",
        ),
        ([definition(3, ecsProperties={"taskProperties": []})], "ECS task properties"),
        ([definition(3, type="container", eksProperties={"podProperties": {}})], "EKS pod"),
        ([], "is not in Batch"),
    ],
)
def test_a_job_definition_with_no_command_to_wrap_says_why(
    batch: tuple[BatchGateway, Stubber, list[float]], entries: list[dict[str, Any]], why: str
):
    gateway, stubber, _ = batch
    stubber.add_response("describe_job_definitions", {"jobDefinitions": entries})
    found = gateway.definition_command(f"{TRAINER}:3")
    assert found.command is None
    assert why in found.why_none


def test_reading_a_job_definition_is_retried_then_left_for_a_later_try(
    batch: tuple[BatchGateway, Stubber, list[float]],
):
    gateway, stubber, waits = batch
    stubber.add_client_error("describe_job_definitions", "TooManyRequestsException", http_status_code=429)
    stubber.add_response("describe_job_definitions", {"jobDefinitions": [definition(3, ["run"])]})
    assert gateway.definition_command(f"{TRAINER}:3").command == ("run",)
    assert len(waits) == 1
    for _ in range(gateway.max_attempts):
        stubber.add_client_error("describe_job_definitions", "ServerException", http_status_code=500)
    with pytest.raises(BatchUnavailable, match="cannot read job definition"):
        gateway.definition_command(f"{TRAINER}:4")


def test_a_refused_job_definition_read_is_raised_at_once_naming_the_permission(
    batch: tuple[BatchGateway, Stubber, list[float]], caplog: pytest.LogCaptureFixture
):
    gateway, stubber, waits = batch
    stubber.add_client_error(
        "describe_job_definitions", "AccessDeniedException", "not authorized to perform", http_status_code=403
    )
    with pytest.raises(BatchRefused, match=r"refused to describe job definition .*vision-trainer:3") as refused:
        gateway.definition_command(f"{TRAINER}:3")
    assert "needs batch:DescribeJobDefinitions" in str(refused.value)
    assert "needs batch:DescribeJobDefinitions" in caplog.text, "the log says what to grant"
    assert waits == []


def test_a_command_read_under_a_name_comes_with_the_revision_it_was_read_from(
    batch: tuple[BatchGateway, Stubber, list[float]],
):
    gateway, stubber, _ = batch
    stubber.add_response("describe_job_definitions", {"jobDefinitions": [definition(4, ["train"])]})
    found = gateway.definition_command(TRAINER)
    assert (found.command, found.definition_arn) == (("train",), f"{TRAINER}:4")
    assert gateway.definition_command(f"{TRAINER}:4") == found, "kept for good under the revision read"


def test_a_job_definition_with_no_command_is_read_again_by_the_next_drop(
    batch: tuple[BatchGateway, Stubber, list[float]],
):
    gateway, stubber, _ = batch
    stubber.add_response("describe_job_definitions", {"jobDefinitions": []})
    assert "is not in Batch" in gateway.definition_command(TRAINER).why_none
    stubber.add_response("describe_job_definitions", {"jobDefinitions": [definition(1)]})
    assert "has no command" in gateway.definition_command(TRAINER).why_none
    stubber.add_response("describe_job_definitions", {"jobDefinitions": [definition(2, ["fixed"])]})
    assert gateway.definition_command(TRAINER).command == ("fixed",), "the fixed definition, at once"


def test_keys_outside_a_team_folder_are_not_drops() -> None:
    assert locate("incoming/vision/sub/dir/a.yaml") is not None
    assert locate("incoming/vision/sub/dir/a.yaml").receipt_key == "receipts/vision/sub/dir/a.yaml.json"  # type: ignore[union-attr]
    assert locate("incoming/a.yaml") is None
    assert locate("receipts/vision/a.yaml.json") is None
    assert locate("incoming/vision/") is None


def test_a_file_directly_under_incoming_is_located_under_no_team() -> None:
    """So its rejection has a receipt its uploader can find: receipts/_no_team/<name>.json."""
    stray = locate_drop("incoming/stray.yaml")
    assert stray == DropLocation(team=NO_TEAM, relative_path="stray.yaml", in_team_folder=False)
    assert stray is not None
    assert stray.receipt_key == "receipts/_no_team/stray.yaml.json"
    assert locate_drop("incoming//stray.yaml") == stray
    assert locate_drop("incoming/vision/a.yaml") == locate("incoming/vision/a.yaml")
    for not_a_file in ("incoming/", "incoming/vision/", "incoming/vision/sub/", "receipts/vision/a.yaml.json"):
        assert locate_drop(not_a_file) is None, not_a_file


SOURCE = SpecSource(bucket="jobs", key="incoming/vision/a.yaml", version_id="v1")


@pytest.fixture
def bucket() -> Iterator[tuple[JobsBucket, Stubber]]:
    s3 = client("s3")
    with Stubber(s3) as stubber:
        yield JobsBucket(s3), stubber


def test_a_file_said_to_be_too_large_is_not_even_read(bucket: tuple[JobsBucket, Stubber]) -> None:
    jobs, _ = bucket
    with pytest.raises(SpecUnreadable) as caught:
        jobs.read_spec(SOURCE, size=10_000_000)
    assert caught.value.problem.code == "too_large"


def test_a_file_larger_than_it_was_said_is_caught_by_its_range(bucket: tuple[JobsBucket, Stubber]) -> None:
    jobs, stubber = bucket
    stubber.add_response(
        "get_object",
        {"Body": _body(b"x" * 10), "ContentRange": "bytes 0-262144/900000"},
        {"Bucket": "jobs", "Key": SOURCE.key, "VersionId": "v1", "Range": "bytes=0-262144"},
    )
    with pytest.raises(SpecUnreadable) as caught:
        jobs.read_spec(SOURCE)
    assert "879 KiB" in caught.value.problem.message


def test_a_file_deleted_before_reading_is_a_rejection_with_a_receipt(bucket: tuple[JobsBucket, Stubber]) -> None:
    jobs, stubber = bucket
    stubber.add_client_error("get_object", "NoSuchVersion", http_status_code=404)
    with pytest.raises(SpecUnreadable) as caught:
        jobs.read_spec(SOURCE)
    assert (caught.value.problem.code, caught.value.write_receipt) == ("missing", True)


def test_a_replaced_unversioned_file_leaves_the_receipt_to_the_newer_upload(
    bucket: tuple[JobsBucket, Stubber],
) -> None:
    jobs, stubber = bucket
    stubber.add_client_error("get_object", "PreconditionFailed", http_status_code=412)
    with pytest.raises(SpecUnreadable) as caught:
        jobs.read_spec(SpecSource(bucket="jobs", key="incoming/vision/a.yaml", etag="abc"))
    assert (caught.value.problem.code, caught.value.write_receipt) == ("superseded", False)


def _body(data: bytes) -> Any:
    return StreamingBody(io.BytesIO(data), len(data))


def _event(index: int) -> RunRejected:
    return RunRejected(
        event_id=f"e{index}",
        time="2026-11-23T20:00:00Z",  # type: ignore[arg-type]
        team="vision",
        run_id=f"r{index}",
        source_uri="s3://jobs/incoming/vision/a.yaml",
        problems=[],
        problem_count=0,
    )


def test_events_go_ten_to_a_call_and_refused_ones_are_retried_alone() -> None:
    sns = client("sns")
    topic = "arn:aws:sns:us-east-1:123456789012:events"
    with Stubber(sns) as stubber:
        stubber.add_response(
            "publish_batch",
            {"Successful": [], "Failed": [{"Id": "3", "Code": "InternalError", "SenderFault": False}]},
            {"TopicArn": topic, "PublishBatchRequestEntries": ANY},
        )
        stubber.add_response("publish_batch", {"Successful": [], "Failed": []})
        stubber.add_response("publish", {"MessageId": "m"})
        EventPublisher(sns, topic).publish([_event(index) for index in range(15)])
        stubber.assert_no_pending_responses()


def test_events_that_cannot_be_published_are_returned_and_the_others_go_out() -> None:
    sns = client("sns")
    events = [_event(0), _event(1)]
    with Stubber(sns) as stubber:
        stubber.add_response(
            "publish_batch",
            {
                "Successful": [{"Id": "1", "MessageId": "m"}],
                "Failed": [{"Id": "0", "Code": "InternalError", "SenderFault": False}],
            },
        )
        stubber.add_client_error("publish", "InternalError", http_status_code=500)
        unpublished = EventPublisher(sns, "arn:aws:sns:us-east-1:123456789012:events").publish(events)
        stubber.assert_no_pending_responses()
    assert unpublished == [events[0]]


def test_unprocessed_records_are_retried_then_reported() -> None:
    dynamodb = client("dynamodb")
    table = RunClaims(dynamodb, "records", sleep=lambda seconds: None)
    now = datetime.now(UTC)
    run = RunRecord(
        run_id="r1", team="vision", status="rejected", source=SOURCE, received_at=now, claim_owner="m", claimed_at=now
    )
    left = {"UnprocessedItems": {"records": [{"PutRequest": {"Item": {"PK": {"S": "RUN#r1"}}}}]}}
    with Stubber(dynamodb) as stubber:
        stubber.add_response("batch_write_item", left)
        stubber.add_response("batch_write_item", {"UnprocessedItems": {}})
        table.write_new([run], [])  # a second call takes what the first left
        for _ in range(6):
            stubber.add_response("batch_write_item", left)
        with pytest.raises(RecordsUnavailable):
            table.write_new([run], [])
        stubber.assert_no_pending_responses()


def test_settings_name_what_is_missing() -> None:
    with pytest.raises(SettingsInvalid, match="TABLE_NAME"):
        load_settings(SubmitSettings, {"EVENTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t"})
    settings = load_settings(
        SubmitSettings,
        {
            "TABLE_NAME": "records",
            "EVENTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t",
            "BATCHDROP_PLATFORM_CONFIG": "s3://b/config/platform.yaml",
            "PLATFORM_CONFIG_TTL_SECONDS": "30",
        },
    )
    assert settings.config_ttl_seconds == 30.0


def test_early_retries_go_ten_to_a_call_with_growing_delays_and_a_refusal_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sqs = client("sqs")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/batchdrop-dev-tracking"
    returned = [Returned(f"handle-{index}", receive_count=1 + index % 3) for index in range(12)]
    with Stubber(sqs) as stubber:
        stubber.add_response(
            "change_message_visibility_batch",
            {"Successful": [{"Id": str(index)} for index in range(10)], "Failed": []},
            {
                "QueueUrl": url,
                "Entries": [
                    {"Id": str(index), "ReceiptHandle": f"handle-{index}", "VisibilityTimeout": [10, 30, 90][index % 3]}
                    for index in range(10)
                ],
            },
        )
        stubber.add_client_error("change_message_visibility_batch", "AccessDenied", http_status_code=403)
        EarlyRetry(sqs, url).soon(returned)  # the second call is refused: no exception
        stubber.assert_no_pending_responses()
    assert "early retry not arranged" in caplog.text


# ---------------------------------------------------------------- botocore's own retries, beneath the gateways


class _Raw:
    """What botocore reads an HTTP body from."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def sends_on_a_server_error(config: Config, service: str = "batch") -> int:
    """How many times a client with this config sends one call that is always answered 500 (no network)."""
    sent: list[str] = []

    def answer_500(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.url)
        body = json.dumps({"__type": "InternalFailure", "message": "injected"}).encode()
        return AWSResponse(request.url, 500, HTTPHeaders.from_dict({"x-amzn-ErrorType": "InternalFailure"}), _Raw(body))

    aws = boto3.client(  # type: ignore[call-overload]
        service,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )
    aws.meta.events.register(f"before-send.{service}", answer_500)
    call = (lambda: aws.submit_job(**REQUEST)) if service == "batch" else aws.list_tables
    with pytest.raises(ClientError):
        call()
    return len(sent)


def test_the_batch_client_sends_each_call_once_whatever_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sends_on_a_server_error(BATCH_CLIENT_CONFIG) == 1
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    assert sends_on_a_server_error(BATCH_CLIENT_CONFIG) == 1


def test_botocore_max_attempts_counts_retries_not_attempts() -> None:
    """Why BATCH_CLIENT_CONFIG says `total_max_attempts`: `max_attempts: 1` sent SubmitJob twice."""
    assert sends_on_a_server_error(Config(retries={"mode": "standard", "max_attempts": 1})) == 2
    assert sends_on_a_server_error(STANDARD_CLIENT_CONFIG, "dynamodb") == 6


def test_reads_and_terminates_are_retried_by_the_gateway_itself(batch: tuple[BatchGateway, Stubber, list[float]]):
    gateway, stubber, waits = batch
    stubber.add_client_error("describe_jobs", "ServerException", http_status_code=500)
    stubber.add_client_error("describe_jobs", "TooManyRequestsException", http_status_code=429)
    detail = {
        "jobId": "j-1",
        "jobName": "n",
        "jobQueue": QUEUE,
        "status": "RUNNING",
        "startedAt": 1,
        "jobDefinition": "d",
    }
    stubber.add_response("describe_jobs", {"jobs": [detail]})
    stubber.add_client_error("terminate_job", "ServerException", http_status_code=503)
    stubber.add_response("terminate_job", {})
    assert set(gateway.describe({"j-1"})) == {"j-1"}
    gateway.terminate("j-1", "enough")
    assert len(waits) == 3


def test_a_refused_read_is_not_retried(batch: tuple[BatchGateway, Stubber, list[float]]):
    gateway, stubber, waits = batch
    stubber.add_client_error("describe_jobs", "ClientException", http_status_code=400)
    with pytest.raises(ClientError):
        gateway.describe({"j-1"})
    assert waits == []


def test_an_uncertain_submit_whose_look_up_keeps_failing_is_left_for_a_later_try(
    batch: tuple[BatchGateway, Stubber, list[float]],
):
    gateway, stubber, _ = batch
    stubber.add_client_error("submit_job", "ServerException", http_status_code=500)
    stubber.add_client_error("list_jobs", "ServerException", http_status_code=500)
    stubber.add_client_error("list_jobs", "ServerException", http_status_code=500)
    with pytest.raises(BatchUnavailable, match="cannot tell whether job"):
        gateway.submit(REQUEST)
