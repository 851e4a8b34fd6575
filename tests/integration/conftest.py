"""Integration tests: the real handlers against moto in server mode, over HTTP on 127.0.0.1.

Every test gets a fresh stack created from template.yaml's own properties (the
emulator is reset between tests), the Batch queues and job definitions the
example platform config names, and that config uploaded where the functions
read it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import pytest
from batchdrop_local.batch_fleet import job_definition_arns, provision_batch, queue_arns
from batchdrop_local.emulator import EmbeddedAws, Stack, deploy, environment_of
from batchdrop_local.runtime import invoke, load_handler

from batchdrop.platform import parse_platform_config
from tests.conftest import EVENTS, EXAMPLES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmbeddedAws]:
    started = EmbeddedAws().start()
    yield started
    started.stop()


@pytest.fixture
def aws(emulator: EmbeddedAws) -> Iterator[EmbeddedAws]:
    """The emulator, with this process's boto3 pointed at it for the test (and only the test)."""
    with environment_of(emulator):
        yield emulator


@dataclass
class Uploaded:
    bucket: str
    key: str
    version_id: str
    etag: str
    size: int


@dataclass
class LocalStack:
    aws: EmbeddedAws
    stack: Stack
    bucket: str
    table: str
    events_probe_url: str
    sequencer: list[int] = field(default_factory=lambda: [0x0065C7E1B5000000])

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    def upload(self, key: str, body: bytes) -> Uploaded:
        response = self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)
        return Uploaded(self.bucket, key, response["VersionId"], response["ETag"].strip('"'), len(body))

    def s3_event(
        self, *uploads: Uploaded, template: str = "submit/sqs-s3-put.json", message_ids: list[str] | None = None
    ) -> dict[str, Any]:
        """The committed event file, with its objects replaced by these uploads (shape unchanged)."""
        event = json.loads((EVENTS / template).read_text())
        first = event["Records"][0]
        records = []
        for index, upload in enumerate(uploads):
            record = copy.deepcopy(event["Records"][index] if index < len(event["Records"]) else first)
            body = json.loads(record["body"])
            s3 = body["Records"][0]["s3"]
            s3["bucket"]["name"] = upload.bucket
            s3["bucket"]["arn"] = f"arn:aws:s3:::{upload.bucket}"
            self.sequencer[0] += 1
            s3["object"].update(
                key=quote_plus(upload.key, safe="/"),
                size=upload.size,
                eTag=upload.etag,
                versionId=upload.version_id,
                sequencer=f"{self.sequencer[0]:018X}",
            )
            record["body"] = json.dumps(body, separators=(",", ":"))
            record["md5OfBody"] = hashlib.md5(record["body"].encode()).hexdigest()  # what SQS sends
            record["messageId"] = message_ids[index] if message_ids else str(uuid.uuid4())
            records.append(record)
        return {"Records": records}

    def published_events(self) -> list[dict[str, Any]]:
        """Everything the events topic delivered so far (body and message attributes)."""
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.events_probe_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                envelope = json.loads(message["Body"])
                found.append(
                    {
                        "body": json.loads(envelope["Message"]),
                        "attributes": {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()},
                    }
                )
                sqs.delete_message(QueueUrl=self.events_probe_url, ReceiptHandle=message["ReceiptHandle"])

    def receipt(self, key: str) -> dict[str, Any]:
        body = self.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return json.loads(body)  # type: ignore[no-any-return]

    def batch_jobs(self) -> list[dict[str, Any]]:
        batch = self.client("batch")
        ids = []
        for arn in self.queue_arns:
            for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
                ids += [s["jobId"] for s in batch.list_jobs(jobQueue=arn, jobStatus=status)["jobSummaryList"]]
        if not ids:
            return []
        jobs: list[dict[str, Any]] = []
        for start in range(0, len(ids), 100):
            jobs += batch.describe_jobs(jobs=ids[start : start + 100])["jobs"]
        return [job for job in jobs if ":" not in job["jobId"]]  # array children are not separate submissions

    queue_arns: list[str] = field(default_factory=list)


@pytest.fixture
def local_stack(aws: EmbeddedAws) -> LocalStack:
    aws.reset()
    raw_config = (EXAMPLES / "platform.yaml").read_bytes()
    config = parse_platform_config(raw_config)
    provision_batch(aws, config)
    stack = deploy(
        aws,
        {"BatchJobQueueArns": queue_arns(config), "BatchJobDefinitionArns": job_definition_arns(config)},
    )
    bucket = stack.outputs["JobsBucketName"]
    aws.client("s3").put_object(Bucket=bucket, Key="config/platform.yaml", Body=raw_config)
    sqs = aws.client("sqs")
    probe = sqs.create_queue(QueueName="events-probe")["QueueUrl"]
    probe_arn = sqs.get_queue_attributes(QueueUrl=probe, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=stack.outputs["EventsTopicArn"], Protocol="sqs", Endpoint=probe_arn)
    return LocalStack(
        aws=aws,
        stack=stack,
        bucket=bucket,
        table=stack.outputs["RecordsTableName"],
        events_probe_url=probe,
        queue_arns=queue_arns(config),
    )


@pytest.fixture
def submit_function(local_stack: LocalStack) -> tuple[ModuleType, Callable[[dict[str, Any]], Any]]:
    """The submit function's module, freshly imported (a cold start), and a way to invoke it."""
    function = local_stack.stack.functions["SubmitFunction"]
    module = load_handler(function)
    return module, lambda event: invoke(function, module, event)
