"""SubmitJob's uncertain outcomes as botocore meets them on the wire (its `before-send` event, beneath its
retry layer; no network): which are sent again at once, which are looked up first, and which are left for
the drop's retry because Batch may still be making the job (gateways/batch.py, module doc)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError

from batchdrop.gateways.batch import BATCH_CLIENT_CONFIG, BatchGateway, BatchUnavailable

QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/cpu-shared"
REQUEST = {"jobName": "nightly-main-abc", "jobQueue": QUEUE, "jobDefinition": "arn:aws:batch:x"}
ACCEPTED: tuple[int, dict[str, Any]] = (
    200,
    {"jobId": "j-1", "jobName": REQUEST["jobName"], "jobArn": "arn:aws:batch:job/j-1"},
)
NOT_LISTED: tuple[int, dict[str, Any]] = (200, {"jobSummaryList": []})
LISTED: tuple[int, dict[str, Any]] = (
    200,
    {"jobSummaryList": [{"jobId": "j-0", "jobName": REQUEST["jobName"], "createdAt": 1}]},
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


Outcome = Exception | tuple[int, dict[str, Any]]


class Wire:
    """Batch as the client's requests meet it: each operation's outcomes in order (an answer, or an error
    raised where botocore sends), and every request that went out."""

    def __init__(self, **outcomes: list[Outcome]) -> None:
        self.outcomes = outcomes
        self.sent: list[str] = []
        self.client = boto3.client(
            "batch",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=BATCH_CLIENT_CONFIG,
        )
        self.client.meta.events.register("before-send.batch", self._send)  # type: ignore[arg-type]  # an answer

    def _send(self, request: Any, **_: Any) -> AWSResponse:
        operation = request.url.rsplit("/", 1)[-1]  # /v1/submitjob, /v1/listjobs
        self.sent.append(operation)
        outcome = self.outcomes[operation].pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        status, body = outcome
        headers = {"x-amzn-ErrorType": body["__type"]} if "__type" in body else {}
        return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), _Raw(json.dumps(body).encode()))


def gateway(wire: Wire) -> BatchGateway:
    return BatchGateway(wire.client, sleep=lambda _: None)


def error(status: int) -> tuple[int, dict[str, Any]]:
    return status, {"__type": "ServerException", "message": "injected"}


def test_a_connection_that_could_not_be_made_is_tried_again_without_a_look_up() -> None:
    endpoint = "https://batch.us-east-1.amazonaws.com"
    wire = Wire(
        submitjob=[
            ConnectTimeoutError(endpoint_url=endpoint),
            EndpointConnectionError(endpoint_url=endpoint),
            ACCEPTED,
        ]
    )
    submitted = gateway(wire).submit(REQUEST)
    assert (submitted.job_id, submitted.adopted) == ("j-1", False)
    assert wire.sent == ["submitjob"] * 3, "Batch never received the first two: nothing to look up"


@pytest.mark.parametrize(
    "no_answer",
    [
        ConnectionClosedError(endpoint_url="https://batch"),
        error(502),
        error(504),
    ],
    ids=["connection lost mid-request", "502 from a gateway", "504 from a gateway"],
)
def test_a_submit_batch_may_still_be_making_is_not_sent_again_when_its_job_is_not_listed(no_answer: Outcome) -> None:
    wire = Wire(submitjob=[no_answer], listjobs=[NOT_LISTED])
    with pytest.raises(BatchUnavailable, match="looked up again when the drop is retried"):
        gateway(wire).submit(REQUEST)
    assert wire.sent == ["submitjob", "listjobs"], "one SubmitJob: the drop's retry adopts the job or submits it"


def test_a_submit_batch_may_still_be_making_is_adopted_when_its_job_is_listed() -> None:
    wire = Wire(submitjob=[error(504)], listjobs=[LISTED])
    submitted = gateway(wire).submit(REQUEST)
    assert (submitted.job_id, submitted.adopted) == ("j-0", True)


def test_a_500_from_batch_itself_is_looked_up_then_sent_again() -> None:
    wire = Wire(submitjob=[error(500), ACCEPTED], listjobs=[NOT_LISTED])
    assert gateway(wire).submit(REQUEST).job_id == "j-1"
    assert wire.sent == ["submitjob", "listjobs", "submitjob"]


def test_a_resumed_runs_look_up_that_batch_keeps_throttling_is_a_typed_error_not_a_trace() -> None:
    throttled = (429, {"__type": "TooManyRequestsException", "message": "Too Many Requests"})
    wire = Wire(listjobs=[throttled, throttled])
    with pytest.raises(BatchUnavailable, match="cannot tell whether job"):
        gateway(wire).submit(REQUEST, look_first=True)
    assert wire.sent == ["listjobs", "listjobs"]
