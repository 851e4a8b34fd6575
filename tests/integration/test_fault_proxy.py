"""The fault proxy (tests/faults.py): each kind of fault, seen by a real boto3 client, beneath botocore's retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from batchdrop_local.emulator import EmbeddedAws
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from tests.faults import FaultProxy

ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=10)
TABLE = "proxied"


@pytest.fixture
def table(aws: EmbeddedAws) -> Iterator[str]:
    dynamodb = aws.client("dynamodb")
    if TABLE not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    yield TABLE
    dynamodb.delete_table(TableName=TABLE)


def item(key: str) -> dict[str, Any]:
    return {"pk": {"S": key}, "value": {"S": f"value of {key}"}}


def stored(aws: EmbeddedAws, key: str) -> bool:
    """Whether the emulator holds the item (read past the proxy)."""
    return "Item" in aws.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": key}}, ConsistentRead=True)


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


# ---------------------------------------------------------------- naming and forwarding


def test_requests_are_forwarded_and_named_by_service_and_operation(faults: FaultProxy, aws: EmbeddedAws) -> None:
    s3 = faults.client("s3")
    s3.create_bucket(Bucket="proxied")
    s3.put_object(Bucket="proxied", Key="a/b c.txt", Body=b"hello")
    assert s3.head_object(Bucket="proxied", Key="a/b c.txt")["ContentLength"] == 5
    assert s3.get_object(Bucket="proxied", Key="a/b c.txt")["Body"].read() == b"hello"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="proxied")["Contents"]] == ["a/b c.txt"]
    s3.delete_object(Bucket="proxied", Key="a/b c.txt")
    sqs = faults.client("sqs")
    url = sqs.create_queue(QueueName="proxied")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hi")
    sns = faults.client("sns")
    topic = sns.create_topic(Name="proxied")["TopicArn"]
    sns.publish(TopicArn=topic, Message="hi")
    batch = faults.client("batch")
    batch.describe_job_queues()
    batch.describe_job_definitions()

    assert faults.operations("s3") == [
        "CreateBucket",
        "PutObject",
        "HeadObject",
        "GetObject",
        "ListObjectsV2",
        "DeleteObject",
    ]
    assert faults.operations("sqs") == ["CreateQueue", "SendMessage"]
    assert faults.operations("sns") == ["CreateTopic", "Publish"]
    assert faults.operations("batch") == ["DescribeJobQueues", "DescribeJobDefinitions"]
    assert all(seen.fault is None and seen.status in {200, 204} for seen in faults.requests)
    assert aws.client("s3").list_objects_v2(Bucket="proxied")["KeyCount"] == 0, "the emulator did the work"


def test_clients_built_from_the_environment_go_through_the_proxy(faults: FaultProxy, table: str) -> None:
    boto3.Session().client("dynamodb").describe_table(TableName=table)
    assert faults.operations("dynamodb") == ["DescribeTable"]


# ---------------------------------------------------------------- each kind of fault


def test_server_errors_before_applying_are_retried_by_botocore_beneath_the_caller(
    faults: FaultProxy, aws: EmbeddedAws, table: str
) -> None:
    rule = faults.fail_before("dynamodb", "PutItem", times=2)
    faults.client("dynamodb", Config(retries={"mode": "standard", "max_attempts": 2})).put_item(
        TableName=table, Item=item("a")
    )
    assert rule.fired == 2
    assert [(seen.operation, seen.fault, seen.status) for seen in faults.requests] == [
        ("PutItem", "fail_before", 500),
        ("PutItem", "fail_before", 500),
        ("PutItem", None, 200),
    ]
    assert faults.count("dynamodb", "PutItem") == 3
    assert stored(aws, "a")


def test_a_server_error_before_applying_reaches_a_client_that_does_not_retry_and_nothing_is_applied(
    faults: FaultProxy, aws: EmbeddedAws, table: str
) -> None:
    faults.fail_before("dynamodb", "PutItem", status=503)
    with pytest.raises(ClientError) as raised:
        faults.client("dynamodb", ONE_ATTEMPT).put_item(TableName=table, Item=item("a"))
    assert error_of(raised) == ("ServiceUnavailable", 503)
    assert not stored(aws, "a")


@pytest.mark.parametrize(
    ("service", "call", "expected"),
    [
        ("dynamodb", lambda c: c.list_tables(), ("ProvisionedThroughputExceededException", 400)),
        ("batch", lambda c: c.describe_job_queues(), ("TooManyRequestsException", 429)),
        ("s3", lambda c: c.list_buckets(), ("SlowDown", 503)),
        ("sns", lambda c: c.list_topics(), ("Throttling", 400)),
        ("sqs", lambda c: c.list_queues(), ("ThrottlingException", 400)),
        ("ssm", lambda c: c.describe_parameters(), ("ThrottlingException", 400)),
    ],
)
def test_throttles_are_each_services_own_and_botocore_parses_them(
    faults: FaultProxy, service: str, call: Any, expected: tuple[str, int]
) -> None:
    faults.throttle(service, "*")
    with pytest.raises(ClientError) as raised:
        call(faults.client(service, ONE_ATTEMPT))
    assert error_of(raised) == expected
    assert [seen.fault for seen in faults.requests] == ["throttle"]


@pytest.mark.parametrize(
    ("service", "operation", "call", "code"),
    [
        ("batch", "SubmitJob", lambda c: c.submit_job(jobName="x", jobQueue="q", jobDefinition="d"), "InternalFailure"),
        ("s3", "PutObject", lambda c: c.put_object(Bucket="b", Key="k", Body=b"x"), "InternalError"),
        ("sns", "Publish", lambda c: c.publish(TopicArn="arn:aws:sns:us-east-1:123456789012:t", Message="m"), None),
        ("sqs", "SendMessage", lambda c: c.send_message(QueueUrl="http://x/123456789012/q", MessageBody="m"), None),
        (
            "events",
            "PutEvents",
            lambda c: c.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}]),
            None,
        ),
        ("secretsmanager", "GetSecretValue", lambda c: c.get_secret_value(SecretId="s"), None),
        ("monitoring", "PutMetricData", lambda c: c.put_metric_data(Namespace="n", MetricData=[]), None),
    ],
)
def test_server_errors_are_answered_in_each_protocol(
    faults: FaultProxy, service: str, operation: str, call: Any, code: str | None
) -> None:
    faults.fail_before(service, operation)
    with pytest.raises(ClientError) as raised:
        call(faults.client("cloudwatch" if service == "monitoring" else service, ONE_ATTEMPT))
    assert error_of(raised) == (code or "InternalFailure", 500)
    assert [(seen.service, seen.operation) for seen in faults.requests] == [(service, operation)]


def test_a_call_failed_after_applying_was_applied(faults: FaultProxy, aws: EmbeddedAws, table: str) -> None:
    faults.fail_after("dynamodb", "PutItem")
    with pytest.raises(ClientError) as raised:
        faults.client("dynamodb", ONE_ATTEMPT).put_item(TableName=table, Item=item("a"))
    assert error_of(raised) == ("InternalFailure", 500)
    assert stored(aws, "a"), "the emulator applied it; only the answer was lost"


def test_botocore_resends_a_call_failed_after_applying(faults: FaultProxy, aws: EmbeddedAws) -> None:
    """What the Batch client must not do to SubmitJob: the retry applies the call a second time."""
    aws.client("sqs").create_queue(QueueName="twice")
    url = aws.client("sqs").get_queue_url(QueueName="twice")["QueueUrl"]
    faults.fail_after("sqs", "SendMessage")
    faults.client("sqs").send_message(QueueUrl=url, MessageBody="once?")
    assert faults.count("sqs", "SendMessage") == 2
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "2"


def test_a_delay_holds_the_call_then_forwards_it(faults: FaultProxy, aws: EmbeddedAws, table: str) -> None:
    faults.delay("dynamodb", "PutItem", seconds=0.3)
    started = time.monotonic()
    faults.client("dynamodb", ONE_ATTEMPT).put_item(TableName=table, Item=item("a"))
    assert time.monotonic() - started >= 0.3
    assert [seen.fault for seen in faults.requests] == ["delay"]
    assert stored(aws, "a")


def test_a_delay_past_the_read_timeout_is_a_timeout_whose_call_is_applied_late(
    faults: FaultProxy, aws: EmbeddedAws, table: str
) -> None:
    faults.delay("dynamodb", "PutItem", seconds=0.6)
    impatient = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=0.2)
    with pytest.raises(ReadTimeoutError):
        faults.client("dynamodb", impatient).put_item(TableName=table, Item=item("a"))
    deadline = time.monotonic() + 5
    while not stored(aws, "a"):
        assert time.monotonic() < deadline, "the delayed call was never applied"
        time.sleep(0.1)


def test_a_dropped_answer_is_a_connection_error_on_an_applied_call(
    faults: FaultProxy, aws: EmbeddedAws, table: str
) -> None:
    rule = faults.drop("dynamodb", "PutItem")
    with pytest.raises(ConnectionClosedError):
        faults.client("dynamodb", ONE_ATTEMPT).put_item(TableName=table, Item=item("a"))
    assert rule.fired == 1
    assert [(seen.fault, seen.status) for seen in faults.requests] == [("drop", None)]
    assert stored(aws, "a")


def test_botocore_retries_a_dropped_answer(faults: FaultProxy, table: str) -> None:
    faults.drop("dynamodb", "PutItem")
    faults.client("dynamodb").put_item(TableName=table, Item=item("a"))
    assert [(seen.fault, seen.status) for seen in faults.requests] == [("drop", None), (None, 200)]


def test_a_held_timeout_is_never_applied(faults: FaultProxy, aws: EmbeddedAws, table: str) -> None:
    faults.timeout("dynamodb", "PutItem", seconds=1)
    impatient = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=0.2)
    with pytest.raises(ReadTimeoutError):
        faults.client("dynamodb", impatient).put_item(TableName=table, Item=item("a"))
    time.sleep(1.2)
    assert not stored(aws, "a")
    assert [(seen.fault, seen.status) for seen in faults.requests] == [("timeout", None)]


# ---------------------------------------------------------------- choosing the calls


def test_a_rule_can_pick_the_nth_call_or_calls_carrying_a_text(
    faults: FaultProxy, aws: EmbeddedAws, table: str
) -> None:
    faults.fail_before("dynamodb", "PutItem", nth=2)
    faults.fail_before("dynamodb", "PutItem", body_contains="wanted", times=None)
    dynamodb = faults.client("dynamodb", ONE_ATTEMPT)
    outcomes = []
    for key in ("first", "second", "third", "wanted-1", "wanted-2"):
        try:
            dynamodb.put_item(TableName=table, Item=item(key))
            outcomes.append(key)
        except ClientError:
            outcomes.append(f"{key} failed")
    assert outcomes == ["first", "second failed", "third", "wanted-1 failed", "wanted-2 failed"]
    assert [seen.nth for seen in faults.requests] == [1, 2, 3, 4, 5]
    assert faults.count("dynamodb", "PutItem", fault="fail_before") == 3
    assert faults.count("dynamodb", "PutItem", fault=None) == 2
    assert [stored(aws, key) for key in ("first", "second", "third")] == [True, False, True]


def test_clear_forgets_rules_and_record(faults: FaultProxy, table: str) -> None:
    faults.fail_before("dynamodb", "*", times=None)
    faults.clear()
    faults.client("dynamodb", ONE_ATTEMPT).describe_table(TableName=table)
    assert [(seen.operation, seen.nth, seen.fault) for seen in faults.requests] == [("DescribeTable", 1, None)]


def test_unknown_fault_kinds_are_refused(faults: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        faults.add("dynamodb", "PutItem", "explode")  # type: ignore[arg-type]


def test_stopping_wakes_held_calls_and_returns_promptly(aws: EmbeddedAws) -> None:
    proxy = FaultProxy(aws.endpoint).start()
    proxy.timeout("sqs", "*", seconds=60)
    failures: list[BaseException] = []

    def call() -> None:
        try:
            proxy.client("sqs", Config(retries={"total_max_attempts": 1}, read_timeout=30)).list_queues()
        except Exception as exc:  # whatever the client saw
            failures.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while not proxy.requests:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    proxy.stop()
    caller.join(timeout=10)
    assert time.monotonic() - started < 5
    assert not caller.is_alive()
    assert len(failures) == 1
