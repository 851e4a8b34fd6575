"""Integration tests: the real handlers against moto in server mode, over HTTP on 127.0.0.1.

Every test gets a fresh stack created from template.yaml's own properties (the
emulator is reset between tests), the Batch queues and job definitions the
example platform config names, and that config uploaded where the functions
read it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import pytest
from batchdrop_local.batch_fleet import queue_arns
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.emulator import EmbeddedAws, environment_of
from batchdrop_local.local_stack import create_stack
from batchdrop_local.notifications import StoredObject, s3_put_event, upload
from batchdrop_local.runtime import invoke, load_handler
from batchdrop_local.stack_model import Stack
from batchdrop_local.streams import StreamReader, matches

from batchdrop.platform.config import parse_platform_config
from tests.conftest import EVENTS, EXAMPLES
from tests.faults import FaultProxy, routed_through
from tests.integration.operator_cli import Cli
from tests.integration.submitting import Invoke, UnsleptSubmit, no_waiting

Uploaded = StoredObject


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


@pytest.fixture
def faults(aws: EmbeddedAws, request: pytest.FixtureRequest) -> Iterator[FaultProxy]:
    """A fault-injection proxy in front of the emulator, with this process's boto3 pointed at it for the test.

    Request it before any fixture that imports a handler (`submit_function`, ...): a handler builds its
    clients at import. The harness's own clients (`local_stack.client`) bypass it. See tests/faults.py.
    """
    before = request.fixturenames[: request.fixturenames.index("faults")]
    loaded = [name for name in before if name.endswith("_function")]
    if loaded:
        pytest.fail(f"request `faults` before {loaded}: their handlers' clients would bypass the proxy")
    with FaultProxy(aws.endpoint) as proxy, routed_through(proxy):
        yield proxy


@dataclass
class LocalStack:
    aws: EmbeddedAws
    stack: Stack
    bucket: str
    table: str
    events_probe_url: str
    queue_arns: list[str]
    _outbox: StreamReader | None = None
    _publish: ModuleType | None = None
    _retry: list[dict[str, Any]] = field(default_factory=list)

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    def tell(self) -> dict[str, Any]:
        """Hand the records table's stream (the outbox) since the last call to the publish function, as
        its event source mapping would: what it returned (its partial batch failures)."""
        function = self.stack.functions["PublishFunction"]
        properties = function.events["Outbox"]["Properties"]
        if self._outbox is None:
            self._outbox = StreamReader(self.aws, properties["Stream"])
            self._publish = load_handler(function)
        assert self._publish is not None
        filters = properties.get("FilterCriteria", {}).get("Filters", [])
        records = self._retry + [record for record in self._outbox.read() if matches(record, filters)]
        if not records:
            return {"batchItemFailures": []}
        response: dict[str, Any] = invoke(function, self._publish, {"Records": records})
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
        first = min((numbers.index(number) for number in failed), default=len(records))
        self._retry = records[first:]  # handed over again from the first failed record, as Lambda does
        return response

    def upload(self, key: str, body: bytes) -> StoredObject:
        return upload(self.client("s3"), self.bucket, key, body)

    def s3_event(self, *uploads: StoredObject, template: str = "submit/sqs-s3-put.json") -> dict[str, Any]:
        """The committed event file, carrying these uploads (the shape is the file's)."""
        return s3_put_event(*uploads, template=EVENTS / template)

    def published_events(self) -> list[dict[str, Any]]:
        """Everything the events topic delivered so far (body and message attributes), once the
        publish function has told what was recorded."""
        self.tell()
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
        self.tell()
        body = self.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return json.loads(body)  # type: ignore[no-any-return]

    def batch_jobs(self) -> list[dict[str, Any]]:
        """Every job submitted to the platform's queues (array parents, not their children)."""
        batch = self.client("batch")
        ids = []
        for arn in self.queue_arns:
            for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
                ids += [s["jobId"] for s in batch.list_jobs(jobQueue=arn, jobStatus=status)["jobSummaryList"]]
        jobs: list[dict[str, Any]] = []
        for start in range(0, len(ids), 100):
            jobs += batch.describe_jobs(jobs=ids[start : start + 100])["jobs"]
        return [job for job in jobs if ":" not in job["jobId"]]


@pytest.fixture
def local_stack(aws: EmbeddedAws) -> LocalStack:
    stack = create_stack(aws)
    sqs = aws.client("sqs")
    probe = sqs.create_queue(QueueName="events-probe")["QueueUrl"]
    probe_arn = sqs.get_queue_attributes(QueueUrl=probe, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=stack.outputs["EventsTopicArn"], Protocol="sqs", Endpoint=probe_arn)
    return LocalStack(
        aws=aws,
        stack=stack,
        bucket=stack.outputs["JobsBucketName"],
        table=stack.outputs["RecordsTableName"],
        events_probe_url=probe,
        queue_arns=queue_arns(parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())),
    )


@pytest.fixture
def submit_function(local_stack: LocalStack) -> tuple[ModuleType, Callable[[dict[str, Any]], Any]]:
    """The submit function's module, freshly imported (a cold start), and a way to invoke it."""
    function = local_stack.stack.functions["SubmitFunction"]
    module = load_handler(function)
    return module, lambda event: invoke(function, module, event)


@pytest.fixture
def unslept_submit(submit_function: tuple[ModuleType, Invoke], monkeypatch: pytest.MonkeyPatch) -> UnsleptSubmit:
    """The submit function as the fault tests drive it: its gateway's back-off waits recorded, not slept.
    Ask for `faults` before it, so that the handler's clients are made through the fault proxy."""
    module, submit = submit_function
    return UnsleptSubmit(module, submit, no_waiting(module, monkeypatch))


# ---------------------------------------------------------------- the operator CLI against a module's control plane
# (test_plan_expected, test_rerun_set, test_resume: each module's `plane` fixture runs its own scenario)


@pytest.fixture
def cli(plane: ControlPlane, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """`batchdrop` run in-process against the running control plane of the test module's `plane` fixture."""
    return Cli(plane, capsys, monkeypatch)


# ---------------------------------------------------------------- Slack's webhook endpoint, on loopback
# (test_notify, test_notify_faults, test_run_summary)


@dataclass(frozen=True)
class Reply:
    status: int
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    path: str
    content_type: str
    body: dict[str, Any]
    at: float


class FakeSlack:
    """Records every POST; answers with the scripted replies in order, then 200 `ok`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: deque[Reply] = deque()
        self._lock = threading.Lock()
        fake = self

        class Endpoint(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reply = fake._take(Received(self.path, self.headers["Content-Type"], body, time.monotonic()))
                payload = reply.body.encode()
                self.send_response(reply.status)
                for name, value in {"Content-Type": "text/html", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per request on stderr otherwise

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/services/T0LOCAL/B0{name.upper()}/{name}-token"

    def answer(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def paths(self) -> list[str]:
        return [request.path for request in self.received]

    def _take(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            return self.script.popleft() if self.script else Reply(200)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()
