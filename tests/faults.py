"""Fault injection beneath botocore: an HTTP proxy on 127.0.0.1 in front of the embedded AWS.

A test that monkeypatches `client.submit_job` sits above botocore's retry layer
and cannot see what botocore re-sends by itself. This proxy sits below it: every
request a boto3 client sends (each attempt of botocore's own retries included)
reaches the proxy, which names its service and operation, applies the first
matching rule, if any, forwards the rest to the emulator, and records them all.

Using it in an integration test
-------------------------------
Request the `faults` fixture (tests/integration/conftest.py) *before* any fixture
that imports a Lambda handler (`submit_function`, ...): a handler builds its
clients at import from `AWS_ENDPOINT_URL`, which the fixture points at the proxy
for the test::

    def test_x(faults: FaultProxy, local_stack: LocalStack, submit_function: ...) -> None:
        rule = faults.fail_after("batch", "SubmitJob")        # applied, then answered 500, once
        ...drop a spec, run the function...
        assert faults.count("batch", "SubmitJob") == 1       # what reached the wire
        assert rule.fired == 1

The harness's own clients (`local_stack.client(...)`, `EmbeddedAws.client`) are
built with the emulator's endpoint and bypass the proxy: what a test reads to
check the outcome is never faulted and never counted. `faults.client(service)`
is a boto3 client through the proxy, for tests of the proxy itself.

Rules
-----
`faults.add(service, operation, kind, ...)` or one of the shorthands below, each
returning the `Rule` (its `fired` counts how often it acted):

- `fail_before(service, op, status=500, code=None)`: not forwarded; answered with a
  server error (500 InternalFailure; S3: InternalError; 503: ServiceUnavailable).
- `throttle(service, op)`: not forwarded; answered with the service's throttling
  error: batch 429 TooManyRequestsException, dynamodb 400
  ProvisionedThroughputExceededException, s3 503 SlowDown, sns 400 Throttling,
  any other 400 ThrottlingException.
- `fail_after(service, op, status=500, code=None)`: forwarded (the call IS
  applied), then answered with the server error instead of the real response.
- `delay(service, op, seconds=...)`: waits, then forwards. A delay longer than the
  client's read_timeout is a time-out whose call is applied late.
- `drop(service, op)`: forwarded (applied), then the connection is closed without
  an answer: the client sees a connection error (botocore ConnectionClosedError).
- `timeout(service, op, seconds=...)`: not forwarded; the connection is held for
  `seconds` (or until the proxy stops), then closed without an answer: the client
  times out on a call that was never applied.

Every rule takes, besides: `times` (how many matching requests it acts on; 1 by
default, None for every one), `nth` (act only on the Nth request, 1-based, of
that service and operation, counting every request the proxy saw, faulted or
not) and `body_contains` (act only on requests whose body contains this text,
e.g. a job name). `service` and `operation` may be "*" (any). Rules are tried
in the order they were added; the first that matches and has firings left acts.
`faults.clear_rules()` removes them all.

The record
----------
`faults.requests` is every request seen, in arrival order, as `Seen(service,
operation, nth, fault, status, body)`: `fault` is the kind of the rule that acted
(None if none), `status` what the client was answered (None when dropped or
timed out). `faults.count(service, operation="*", fault=ANY)` counts them (pass
`fault=None` to count only the untouched ones); `faults.operations(service)` is
the sequence of operations sent to a service; `faults.clear()` forgets rules and
record. A request's record is written before its answer is sent, so a test can
assert counts as soon as the client call returns.

Services and operations
-----------------------
The service is the SigV4 credential scope's (`Credential=AKID/date/region/SERVICE/
aws4_request`); requests without one (the emulator's own `/moto-api`) are
recorded with service "". It is the signing name, which is the client's name for
every service batchdrop uses except CloudWatch ("monitoring"). The operation is `X-Amz-Target`'s (JSON protocols:
dynamodb, sqs, ssm, secretsmanager, events, logs), the path's for Smithy RPC v2
CBOR (cloudwatch), the form body's `Action=` (query protocol: sns), the REST
path's for batch (POST /v1/submitjob -> SubmitJob), and method, path and
sub-resource for s3 (GetObject, PutObject, HeadObject, ListObjectsV2, ...). Any
other REST request is named "<METHOD> <path>". Errors are answered in the
protocol the request used, so botocore parses their code: JSON `{"__type",
"message"}` (and `x-amzn-ErrorType` for rest-json), CBOR for RPC v2, the query
protocol's `<ErrorResponse>` XML, and S3's `<Error>` XML.

Only the standard library: ThreadingHTTPServer on 127.0.0.1 port 0, http.client
to forward (one upstream connection per request). `stop()` (or leaving the
`with` block) shuts it down and wakes any delay or held time-out.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Literal
from xml.sax.saxutils import escape

import boto3
from botocore.config import Config

FaultKind = Literal["fail_before", "throttle", "fail_after", "delay", "drop", "timeout"]
FAULT_KINDS: Final = ("fail_before", "throttle", "fail_after", "delay", "drop", "timeout")
ANY: Final = "*"


class _Any:
    """The default of `count(fault=...)`: requests with or without a fault."""


_ANY_FAULT: Final = _Any()

_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
    | {"transfer-encoding", "upgrade", "content-length"}
)

_BATCH_OPERATIONS = {
    name.lower(): name
    for name in (
        "CancelJob",
        "CancelJobs",
        "CreateComputeEnvironment",
        "CreateJobQueue",
        "CreateSchedulingPolicy",
        "DeleteComputeEnvironment",
        "DeleteJobQueue",
        "DeleteSchedulingPolicy",
        "DeregisterJobDefinition",
        "DescribeComputeEnvironments",
        "DescribeJobDefinitions",
        "DescribeJobQueues",
        "DescribeJobs",
        "DescribeSchedulingPolicies",
        "GetJobQueueSnapshot",
        "ListJobs",
        "ListSchedulingPolicies",
        "RegisterJobDefinition",
        "SubmitJob",
        "TerminateJob",
        "TerminateJobs",
        "UpdateComputeEnvironment",
        "UpdateJobQueue",
        "UpdateSchedulingPolicy",
    )
}
_BATCH_TAGS = {"GET": "ListTagsForResource", "POST": "TagResource", "DELETE": "UntagResource"}

_S3_BUCKET_SUBRESOURCES = {
    "notification": "BucketNotificationConfiguration",
    "versioning": "BucketVersioning",
    "policy": "BucketPolicy",
    "encryption": "BucketEncryption",
    "lifecycle": "BucketLifecycleConfiguration",
    "tagging": "BucketTagging",
    "publicAccessBlock": "PublicAccessBlock",
    "ownershipControls": "BucketOwnershipControls",
    "cors": "BucketCors",
    "acl": "BucketAcl",
    "logging": "BucketLogging",
    "location": "BucketLocation",
}
_S3_VERB = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}

_THROTTLES: Mapping[str, tuple[int, str]] = {
    "batch": (429, "TooManyRequestsException"),
    "dynamodb": (400, "ProvisionedThroughputExceededException"),
    "s3": (503, "SlowDown"),
    "sns": (400, "Throttling"),
}


@dataclass
class Rule:
    """A fault for requests of one service and operation. `fired` counts the requests it acted on."""

    service: str
    operation: str
    kind: FaultKind
    times: int | None = 1
    nth: int | None = None
    body_contains: bytes | None = None
    seconds: float = 0.0
    status: int | None = None
    code: str | None = None
    fired: int = 0

    def matches(self, service: str, operation: str, nth: int, body: bytes) -> bool:
        return (
            (self.times is None or self.fired < self.times)
            and self.service in (ANY, service)
            and self.operation in (ANY, operation)
            and (self.nth is None or self.nth == nth)
            and (self.body_contains is None or self.body_contains in body)
        )


@dataclass(frozen=True)
class Seen:
    """One request the proxy received, and what it did with it."""

    service: str
    operation: str
    nth: int
    """This request's ordinal (from 1) among the requests of its service and operation."""
    fault: FaultKind | None
    status: int | None
    """The status the client was answered with; None when the connection was closed without one."""
    body: bytes


class FaultProxy:
    """The proxy in front of `upstream` (the emulator's endpoint, http://127.0.0.1:port)."""

    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or parsed.hostname is None or parsed.port is None:
            raise ValueError(f"the proxy forwards to http://host:port, not {upstream!r}")
        self.upstream_host: str = parsed.hostname
        self.upstream_port: int = parsed.port
        self.endpoint = ""
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._seen: list[Seen] = []
        self._ordinals: Counter[tuple[str, str]] = Counter()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle

    def start(self) -> FaultProxy:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        )
        self._thread.start()
        host, port = server.server_address[:2]
        self.endpoint = f"http://{host!s}:{port}"
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes delays and held time-outs
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """What points boto3 clients built from the environment at the proxy."""
        return {"AWS_ENDPOINT_URL": self.endpoint}

    def client(self, service: str, config: Config | None = None) -> Any:
        """A boto3 client through the proxy (credentials and region as the emulator takes them)."""
        session = boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # the emulator takes any credentials
            region_name="us-east-1",
        )
        return session.client(service, endpoint_url=self.endpoint, config=config)  # type: ignore[call-overload]

    # ------------------------------------------------------------------ rules

    def add(
        self,
        service: str,
        operation: str,
        kind: FaultKind,
        *,
        times: int | None = 1,
        nth: int | None = None,
        body_contains: str | bytes | None = None,
        seconds: float = 0.0,
        status: int | None = None,
        code: str | None = None,
    ) -> Rule:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        rule = Rule(
            service=service,
            operation=operation,
            kind=kind,
            times=times,
            nth=nth,
            body_contains=body_contains.encode() if isinstance(body_contains, str) else body_contains,
            seconds=seconds,
            status=status,
            code=code,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def fail_before(
        self,
        service: str,
        operation: str,
        *,
        times: int | None = 1,
        nth: int | None = None,
        body_contains: str | bytes | None = None,
        status: int = 500,
        code: str | None = None,
    ) -> Rule:
        """Not applied: answered with a server error."""
        return self.add(
            service,
            operation,
            "fail_before",
            times=times,
            nth=nth,
            body_contains=body_contains,
            status=status,
            code=code,
        )

    def throttle(
        self,
        service: str,
        operation: str,
        *,
        times: int | None = 1,
        nth: int | None = None,
        body_contains: str | bytes | None = None,
    ) -> Rule:
        """Not applied: answered with the service's throttling error."""
        return self.add(service, operation, "throttle", times=times, nth=nth, body_contains=body_contains)

    def fail_after(
        self,
        service: str,
        operation: str,
        *,
        times: int | None = 1,
        nth: int | None = None,
        body_contains: str | bytes | None = None,
        status: int = 500,
        code: str | None = None,
    ) -> Rule:
        """Applied, then answered with a server error instead of the real answer."""
        return self.add(
            service,
            operation,
            "fail_after",
            times=times,
            nth=nth,
            body_contains=body_contains,
            status=status,
            code=code,
        )

    def delay(
        self,
        service: str,
        operation: str,
        *,
        seconds: float,
        times: int | None = 1,
        nth: int | None = None,
        body_contains: str | bytes | None = None,
    ) -> Rule:
        """Forwarded after `seconds`."""
        return self.add(service, operation, "delay", seconds=seconds, times=times, nth=nth, body_contains=body_contains)

    def drop(
        self,
        service: str,
        operation: str,
        *,
        times: int | None = 1,
        nth: int | None = None,
        body_contains: str | bytes | None = None,
    ) -> Rule:
        """Applied, then the connection is closed without an answer."""
        return self.add(service, operation, "drop", times=times, nth=nth, body_contains=body_contains)

    def timeout(
        self,
        service: str,
        operation: str,
        *,
        seconds: float = 60.0,
        times: int | None = 1,
        nth: int | None = None,
        body_contains: str | bytes | None = None,
    ) -> Rule:
        """Not applied: no answer for `seconds`, then the connection is closed."""
        return self.add(
            service, operation, "timeout", seconds=seconds, times=times, nth=nth, body_contains=body_contains
        )

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def clear(self) -> None:
        """Forget the rules and the record (ordinals start again from 1)."""
        with self._lock:
            self._rules.clear()
            self._seen.clear()
            self._ordinals.clear()

    # ------------------------------------------------------------------ the record

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def count(self, service: str = ANY, operation: str = ANY, *, fault: FaultKind | _Any | None = _ANY_FAULT) -> int:
        return sum(
            1
            for seen in self.requests
            if service in (ANY, seen.service)
            and operation in (ANY, seen.operation)
            and (isinstance(fault, _Any) or seen.fault == fault)
        )

    def operations(self, service: str) -> list[str]:
        """The operations sent to `service`, in order."""
        return [seen.operation for seen in self.requests if seen.service == service]

    # ------------------------------------------------------------------ used by the handler

    def _arrive(self, service: str, operation: str, body: bytes) -> tuple[int, Rule | None]:
        with self._lock:
            self._ordinals[service, operation] += 1
            nth = self._ordinals[service, operation]
            for rule in self._rules:
                if rule.matches(service, operation, nth, body):
                    rule.fired += 1
                    return nth, rule
            return nth, None

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)


@contextmanager
def routed_through(proxy: FaultProxy) -> Iterator[FaultProxy]:
    """Point boto3 clients built from this process's environment at the proxy for the duration."""
    saved = {name: os.environ.get(name) for name in proxy.environment()}
    os.environ.update(proxy.environment())
    try:
        yield proxy
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ---------------------------------------------------------------------- naming a request


def service_of(headers: Message, path: str) -> str:
    """The SigV4 credential scope's service (header, or a presigned URL's query), or ""."""
    found = _CREDENTIAL.search(headers.get("Authorization", ""))
    if found:
        return found.group(1)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    credential = query.get("X-Amz-Credential", [""])[0].split("/")
    return credential[3] if len(credential) == 5 else ""


def operation_of(service: str, method: str, path: str, headers: Message, body: bytes) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    split = urllib.parse.urlsplit(path)
    if "rpc-v2-cbor" in headers.get("smithy-protocol", ""):
        return split.path.rstrip("/").rsplit("/", 1)[-1]
    if headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    action = urllib.parse.parse_qs(split.query).get("Action")
    if action:
        return action[0]
    if service == "s3":
        return _s3_operation(method, split.path, urllib.parse.parse_qs(split.query, keep_blank_values=True), headers)
    if service == "batch":
        parts = split.path.strip("/").split("/")
        if len(parts) >= 2 and parts[0] == "v1":
            if parts[1] == "tags":
                return _BATCH_TAGS.get(method, f"{method} {split.path}")
            return _BATCH_OPERATIONS.get(parts[1], parts[1])
    return f"{method} {split.path}"


def _s3_operation(method: str, path: str, query: dict[str, list[str]], headers: Message) -> str:
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets"
    if not key:
        for subresource, name in _S3_BUCKET_SUBRESOURCES.items():
            if subresource in query and method in _S3_VERB:
                return _S3_VERB[method] + name
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        if method == "GET":
            if query.get("list-type") == ["2"]:
                return "ListObjectsV2"
            if "versions" in query:
                return "ListObjectVersions"
            if "uploads" in query:
                return "ListMultipartUploads"
            return "ListObjects"
        return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(
            method, f"{method} /{bucket}"
        )
    if "tagging" in query and method in _S3_VERB:
        return _S3_VERB[method] + "ObjectTagging"
    if "acl" in query and method in {"GET", "PUT"}:
        return _S3_VERB[method] + "ObjectAcl"
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if "uploadId" in query:
        return {
            "PUT": "UploadPartCopy" if "x-amz-copy-source" in headers else "UploadPart",
            "POST": "CompleteMultipartUpload",
            "DELETE": "AbortMultipartUpload",
            "GET": "ListParts",
        }.get(method, f"{method} {path}")
    if method == "PUT":
        return "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, f"{method} {path}")


# ---------------------------------------------------------------------- answering with an error


def error_answer(
    service: str, headers: Message, status: int, code: str, message: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """An error in the protocol of the request (status, headers, body), as the service would send it."""
    request_id = "fault-proxy-0000"
    if service == "s3":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        return status, [("Content-Type", "application/xml")], body
    if "rpc-v2-cbor" in headers.get("smithy-protocol", ""):
        return (
            status,
            [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")],
            _cbor_map({"__type": code, "message": message}),
        )
    target = headers.get("X-Amz-Target")
    if target:
        if service == "dynamodb":
            code = f"com.amazonaws.dynamodb.v20120810#{code}"
        content_type = headers.get("Content-Type") or "application/x-amz-json-1.0"
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, [("Content-Type", content_type), ("x-amzn-RequestId", request_id)], body
    if headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        return status, [("Content-Type", "text/xml")], body
    body = json.dumps({"__type": code, "message": message}).encode()
    return (
        status,
        [("Content-Type", "application/json"), ("x-amzn-ErrorType", code), ("x-amzn-RequestId", request_id)],
        body,
    )


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    size = len(data)
    if size < 24:
        head = bytes([0x60 + size])
    elif size < 0x100:
        head = bytes([0x78, size])
    else:
        head = bytes([0x79]) + size.to_bytes(2, "big")
    return head + data


def _cbor_map(items: dict[str, str]) -> bytes:
    assert len(items) < 24
    return bytes([0xA0 + len(items)]) + b"".join(_cbor_text(key) + _cbor_text(value) for key, value in items.items())


def _fault_error(rule: Rule, service: str) -> tuple[int, str, str]:
    """(status, code, message) of the error a rule answers with."""
    if rule.kind == "throttle":
        status, code = _THROTTLES.get(service, (400, "ThrottlingException"))
        return status, rule.code or code, "Rate exceeded (injected by the fault proxy)"
    status = rule.status or 500
    if rule.code:
        code = rule.code
    elif status == 503:
        code = "ServiceUnavailable"
    else:
        code = "InternalError" if service == "s3" else "InternalFailure"
    applied = "after applying the request" if rule.kind == "fail_after" else "before applying the request"
    return status, code, f"injected server error {applied}"


# ---------------------------------------------------------------------- the server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request otherwise."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        service = service_of(self.headers, self.path)
        operation = operation_of(service, self.command, self.path, self.headers, body) if service else self.path
        nth, rule = proxy._arrive(service, operation, body)
        kind = rule.kind if rule else None

        def record(status: int | None) -> None:
            proxy._record(Seen(service=service, operation=operation, nth=nth, fault=kind, status=status, body=body))

        if rule is not None and rule.kind in {"fail_before", "throttle"}:
            status, code, message = _fault_error(rule, service)
            record(status)
            self._answer(*error_answer(service, self.headers, status, code, message))
            return
        if rule is not None and rule.kind == "timeout":
            record(None)
            proxy._stopping.wait(rule.seconds)
            self.close_connection = True
            return
        if rule is not None and rule.kind == "delay":
            proxy._stopping.wait(rule.seconds)
        try:
            answer = self._forward(body)
        except (OSError, http.client.HTTPException):
            record(None)
            self.close_connection = True  # as the emulator did
            return
        if rule is not None and rule.kind == "drop":
            record(None)
            self.close_connection = True
            return
        if rule is not None and rule.kind == "fail_after":
            status, code, message = _fault_error(rule, service)
            record(status)
            self._answer(*error_answer(service, self.headers, status, code, message))
            return
        record(answer[0])
        self._answer(*answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        connection = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=120)
        try:
            connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    connection.putheader(name, value)
            if body or self.command in {"POST", "PUT", "PATCH"}:
                connection.putheader("Content-Length", str(len(body)))
            connection.putheader("Connection", "close")
            connection.endheaders(body or None)
            response = connection.getresponse()
            payload = response.read()
            headers = [(name, value) for name, value in response.getheaders() if name.lower() not in _HOP_BY_HOP]
            if self.command == "HEAD":  # no body, but the size of the one a GET would have
                headers += [(name, value) for name, value in response.getheaders() if name.lower() == "content-length"]
            return response.status, headers, payload
        finally:
            connection.close()

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        try:
            self.send_response_only(status)
            for name, value in headers:
                self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its read timed out)
            self.close_connection = True
