"""The burst (issue 17): thousands of drops at once through the real submit handler, against a shared SubmitJob limit.

People generate spec files by script, so thousands of drops at once is a normal day. AWS Batch
takes about 50 SubmitJob calls a second per account and answers the rest `TooManyRequestsException`
(HTTP 429). This benchmark plays that, on the embedded AWS:

- **the limit**: an HTTP proxy in front of the emulator's Batch (`SubmitJobLimit`, the test suite's
  FaultProxy with a token bucket) that every submit instance's Batch client goes through
  (`AWS_ENDPOINT_URL_BATCH`); a SubmitJob beyond the bucket is answered 429, as Batch does, and
  never reaches Batch.
- **the instances**: `SubmitMaxConcurrency` (the template's default) worker processes
  (`bench.burst_worker`), each the real submit handler and its SQS poller, on the stack's own intake
  queue (its visibility timeout, its redrive policy of 5 receives to the dead-letter queue).
- **the bursts**: N single-job drops; sweeps of 100 children (one array job, one SubmitJob each);
  a mix of the example specs. Every message is sent at once; the clock starts then.

Scaled: this machine runs the emulator, the proxy and five handlers on two cores, which cannot
make 50 SubmitJob calls a second through the whole submit path, so the limit is scaled down
(`BURST_LIMIT`, 8 a second by default: with other work on the machine, five handlers here may
make no more than 10 single-job drops a second; half that for the sweeps, each of which costs this
machine as much as about three single-job drops) with the drop counts (`--full` or `BURST_FULL=1`: 10,000
drops). What is measured is how the submit instances share the limit: the fraction
of it they achieve, how often they are refused, and whether a drop is lost or submitted twice.

Three designs are run on the same bursts: **unpaced** (every instance sends as fast as it can and
backs off on its own when throttled: batchdrop before issue 17), **own share** (each instance paces
itself to `SubmitJobsPerSecond / SubmitMaxConcurrency`) and the **shared schedule** batchdrop runs
(each SubmitJob books its slot on one schedule in the records table: `store/submit_slots`). Then the
latencies: a drop to its `run.submitted` event on an idle stack and during the burst, and a Batch
event to its Slack message (`bench.burst_latency`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchdrop_local.emulator import SeparateEmbeddedAws
from batchdrop_local.local_stack import create_stack
from batchdrop_local.notifications import StoredObject, s3_notification
from batchdrop_local.stack_model import Stack
from batchdrop_local.template import load_template, parameter_defaults

from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import SpecSource
from batchdrop.submit.submitter import Submitter
from bench import burst_latency
from bench.report import ROOT, Figure, against_separate_aws
from tests.faults import FaultProxy, Rule, Seen

FULL = "--full" in sys.argv or os.environ.get("BURST_FULL") == "1"
LIMIT = float(os.environ.get("BURST_LIMIT", "8"))
"""SubmitJob calls a second the shared bucket allows (Batch's is 50; scaled for this machine)."""
SINGLES = 10_000 if FULL else 240
SWEEPS = 100
RATE_TARGET = 0.9
FUNCTION_TIMEOUT = 120
"""The submit function's timeout (template): an invocation longer than this Lambda would have stopped."""
RETRY_SECONDS = 5
"""When a message the handler failed comes back: the queue's 720 s, shortened so that a benchmark sees
the retries and the dead-letter queue; each failure is counted, since in AWS it costs 12 minutes."""
CHOSEN = "shared schedule"
"""The design batchdrop runs (wiring/build): its figures are held to the targets."""
DESIGNS = {"unpaced": "none", "own share": "own share", "shared schedule": "shared"}
"""Each design measured, and how the worker paces SubmitJob for it (`bench.burst_worker`)."""
SPECS = ROOT / "examples" / "specs"


def _sweep_of_100() -> bytes:
    """The example 1,000-point sweep with one axis less: 10 learning rates × 10 seeds."""
    lines = (SPECS / "lr-grid-1000.yaml").read_text().splitlines()
    return ("\n".join(line for line in lines if not line.startswith("  weight_decay:")) + "\n").encode()


SINGLE = (SPECS / "cpu-report.yaml").read_bytes()
SWEEP = _sweep_of_100()
MIX = [
    SINGLE,
    (SPECS / "gpu-finetune.yaml").read_bytes(),
    (SPECS / "resnet-pipeline.yaml").read_bytes(),
    (SPECS / "triage-experiment.json").read_bytes(),
    (SPECS / "vision-production.yaml").read_bytes(),
    SWEEP,
]


def _team(raw: bytes) -> str:
    return "forecasting" if b"team: forecasting" in raw or b'"forecasting"' in raw else "vision"


def _instances() -> int:
    return int(parameter_defaults(load_template())["SubmitMaxConcurrency"])


class SubmitJobLimit(FaultProxy):
    """Batch's SubmitJob limit, shared by every client that comes through: a token bucket of `per_second`
    tokens a second holding at most `burst`; a SubmitJob without a token is answered as Batch throttles
    (429 TooManyRequestsException) and never applied. Every other request is forwarded untouched."""

    def __init__(self, upstream: str, per_second: float, burst: float) -> None:
        super().__init__(upstream)
        self.per_second = per_second
        self.burst = burst
        self._tokens = burst
        self._counted_at = time.monotonic()
        self._refused = Rule(service="batch", operation="SubmitJob", kind="throttle", times=None)
        self.times: list[float] = []
        """Each recorded request's wall-clock time, in the order of `requests`."""

    def _arrive(self, service: str, operation: str, body: bytes) -> tuple[int, Rule | None]:
        nth, rule = super()._arrive(service, operation, body)
        if rule is not None or (service, operation) != ("batch", "SubmitJob"):
            return nth, rule
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._counted_at) * self.per_second)
            self._counted_at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return nth, None
            self._refused.fired += 1
            return nth, self._refused

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)
            self.times.append(time.time())


@dataclass
class Burst:
    """What one burst did."""

    name: str
    design: str
    drops: int
    submitted_runs: int
    jobs: int
    """SubmitJob calls Batch accepted."""
    throttled: int
    duplicates: int
    dead_letters: int
    failed_deliveries: int
    """Messages a handler reported failed (or an invocation past the timeout): each would wait 720 s in AWS."""
    uncertain: int
    """SubmitJob calls whose outcome was uncertain (time-out, lost connection, 5xx), settled by the job's name."""
    timeouts: int
    seconds_to_last_job: float
    rate: float
    """Accepted SubmitJob calls a second, from the first SubmitJob to the last accepted one."""
    latencies: list[float]
    """Seconds from each drop's message to its run's `submitted_at`."""
    unfinished: bool

    def figures(self, limit: float) -> list[Figure]:
        floor = self.jobs / limit
        fraction = self.rate / limit
        p50, p99 = _percentile(self.latencies, 50), _percentile(self.latencies, 99)
        chosen = self.design == CHOSEN
        return [
            Figure(
                f"{self.name}, {self.design}: SubmitJob rate / the limit",
                fraction,
                "",
                target=f"≥ {RATE_TARGET}" if chosen else "",
                within=fraction >= RATE_TARGET if chosen else None,
                detail=f"{self.rate:.1f} of {limit:g} a second; {self.jobs:,} jobs of {self.drops:,} drops,"
                f" {self.submitted_runs:,} runs submitted"
                + (" — UNFINISHED at the deadline" if self.unfinished else ""),
            ),
            Figure(
                f"{self.name}, {self.design}: time to the last submission",
                self.seconds_to_last_job,
                "s",
                detail=f"floor (jobs / limit) {floor:.0f} s: {self.seconds_to_last_job / floor:.2f}× the floor",
            ),
            Figure(
                f"{self.name}, {self.design}: throttled SubmitJob calls per submitted job",
                self.throttled / max(1, self.jobs),
                "",
                detail=f"{self.throttled:,} refused; drops failed and retried (each 720 s late in AWS)"
                f" {self.failed_deliveries:,}; invocations past the 120 s timeout {self.timeouts};"
                f" SubmitJob outcomes uncertain (settled by name) {self.uncertain}",
            ),
            Figure(
                f"{self.name}, {self.design}: messages in the intake DLQ",
                self.dead_letters,
                "",
                target="0" if chosen else "",
                within=self.dead_letters == 0 if chosen else None,
            ),
            Figure(
                f"{self.name}, {self.design}: duplicate Batch jobs (one name submitted twice)",
                self.duplicates,
                "",
                target="0",
                within=self.duplicates == 0,
            ),
            Figure(
                f"{self.name}, {self.design}: drop to run submitted during the burst, p50",
                p50,
                "s",
                detail=f"p99 {p99:.1f} s",
            ),
        ]


def _percentile(values: list[float], percent: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def run() -> list[Figure]:
    return against_separate_aws(_measure) + against_separate_aws(burst_latency.measure)


def _measure(aws: SeparateEmbeddedAws) -> list[Figure]:
    instances = _instances()
    singles = [SINGLE] * SINGLES
    sweeps = [SWEEP] * SWEEPS
    mix = [MIX[index % len(MIX)] for index in range(SINGLES // 2)]
    scale = "full scale" if FULL else f"scaled: Batch's 50 a second as {LIMIT:g}, drops to match (--full: 10,000)"
    figures = [
        Figure(
            "the shared SubmitJob limit",
            LIMIT,
            "a second",
            detail=f"{scale}; the sweeps' {LIMIT / 2:g}; {instances} submit instances (SubmitMaxConcurrency)",
        )
    ]
    runs = [
        ("single-job drops", singles, "unpaced", LIMIT),
        ("single-job drops", singles, "own share", LIMIT),
        ("single-job drops", singles, CHOSEN, LIMIT),
        # a sweep of 100 children costs this machine as much as ~3 single-job drops: half the limit keeps
        # the limit, not the machine, the bound (as it is in AWS, where 5 instances outpace 40 a second)
        ("sweeps of 100 children", sweeps, "unpaced", LIMIT / 2),
        ("sweeps of 100 children", sweeps, CHOSEN, LIMIT / 2),
        ("a mix of the example specs", mix, CHOSEN, LIMIT),
    ]
    stack = create_stack(aws)
    s3 = aws.client("s3")  # moto's own notifications off: each burst sends S3's, with the versions, at once
    s3.put_bucket_notification_configuration(Bucket=stack.outputs["JobsBucketName"], NotificationConfiguration={})
    for name, drops, design, per_second in runs:
        burst = _burst(aws, stack, name, drops, design, per_second=per_second)
        print(f"  … {name}, {design}: {burst.jobs} jobs in {burst.seconds_to_last_job:.0f} s", file=sys.stderr)
        figures += burst.figures(per_second)
    return figures


def _burst(
    aws: SeparateEmbeddedAws, stack: Stack, name: str, specs: list[bytes], design: str, *, per_second: float = LIMIT
) -> Burst:
    """One burst on the stack (its own keys: bursts on one stack never share a run) against a limit of
    `per_second` SubmitJob calls a second, which is also the stack's `SubmitJobsPerSecond`."""
    instances = _instances()
    function = stack.functions["SubmitFunction"]
    bucket = stack.outputs["JobsBucketName"]
    s3, sqs = aws.client("s3"), aws.client("sqs")
    folder_name = f"{name}-{design}".replace(" ", "-")
    with ThreadPoolExecutor(max_workers=8) as pool:
        stored = list(
            pool.map(
                lambda indexed: _upload(
                    s3,
                    bucket,
                    f"incoming/{_team(indexed[1])}/{folder_name}/{indexed[0]:05d}.{_suffix(indexed[1])}",
                    indexed[1],
                ),
                enumerate(specs),
            )
        )
    intake, dead_letters = stack.outputs["IntakeQueueUrl"], stack.outputs["IntakeDeadLetterQueueUrl"]
    dead_before = _depth(sqs, dead_letters)
    arn = sqs.get_queue_attributes(QueueUrl=intake, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    limit = SubmitJobLimit(aws.endpoint, per_second=per_second, burst=per_second)
    limit.start()
    with tempfile.TemporaryDirectory() as folder:
        environment = {
            **os.environ,
            **aws.environment(),
            **function.environment,
            "AWS_ENDPOINT_URL_BATCH": limit.endpoint,  # Batch through the limit; every other service direct
            "SUBMIT_JOBS_PER_SECOND": str(per_second),
            "SUBMIT_MAX_CONCURRENCY": str(instances),
            # shortened with the queue's return: a failed message's claim is older than its lease when it
            # comes back, as in AWS (lease 125 s, return after 720 s); no message here is delivered twice at once
            "CLAIM_LEASE_SECONDS": str(RETRY_SECONDS - 1),
        }
        queue = Queue(aws.endpoint, intake, arn)
        workers = _start_workers(Path(folder), environment, queue, (design, per_second), instances)
        try:
            bodies = [json.dumps(s3_notification(item), separators=(",", ":")) for item in stored]
            run_ids = [_run_id(body) for body in bodies]
            queries = RecordQueries(aws.client("dynamodb"), function.environment["TABLE_NAME"])
            sent_at, unfinished = _send_and_drain(
                sqs, intake, bodies, lambda: _all_decided(queries, run_ids), deadline=60 + 8 * len(specs) / per_second
            )
        finally:
            (Path(folder) / "stop").touch()
            counts = [_finished(worker) for worker in workers]
        limit.stop()
    requests = list(zip(limit.requests, limit.times, strict=True))
    submit_jobs = [(seen, at) for seen, at in requests if (seen.service, seen.operation) == ("batch", "SubmitJob")]
    accepted = [(seen, at) for seen, at in submit_jobs if seen.status == 200]
    names = Counter(json.loads(seen.body)["jobName"] for seen, _ in accepted)
    first = min((at for _, at in submit_jobs), default=sent_at[0])
    last = max((at for _, at in accepted), default=first)
    latencies, submitted = _latencies(aws, function.environment["TABLE_NAME"], bodies, sent_at)
    return Burst(
        name=name,
        design=design,
        drops=len(specs),
        submitted_runs=submitted,
        jobs=len(accepted),
        throttled=sum(1 for seen, _ in submit_jobs if seen.fault == "throttle"),
        duplicates=sum(count - 1 for count in names.values() if count > 1),
        dead_letters=_depth(sqs, dead_letters) - dead_before,
        failed_deliveries=sum(count["failures"] for count in counts),
        timeouts=sum(count["timeouts"] for count in counts),
        uncertain=sum(count.get("uncertain", 0) for count in counts),
        seconds_to_last_job=last - sent_at[0],
        rate=len(accepted) / max(1e-9, last - first),
        latencies=latencies,
        unfinished=unfinished,
    )


def _suffix(raw: bytes) -> str:
    return "json" if raw.startswith(b"{") else "yaml"


def _upload(s3: Any, bucket: str, key: str, body: bytes) -> StoredObject:
    response = s3.put_object(Bucket=bucket, Key=key, Body=body)
    return StoredObject(bucket, key, response.get("VersionId"), response["ETag"].strip('"'), len(body))


@dataclass(frozen=True)
class Queue:
    endpoint: str
    url: str
    arn: str


def _start_workers(
    folder: Path, environment: dict[str, str], queue: Queue, pacing: tuple[str, float], instances: int
) -> list[subprocess.Popen[str]]:
    design, per_second = pacing
    workers = []
    for index in range(instances):
        settings = {
            "endpoint": queue.endpoint,
            "queue_url": queue.url,
            "queue_arn": queue.arn,
            "pacing": DESIGNS[design],
            "per_second": per_second,
            "instances": instances,
            "stop_file": str(folder / "stop"),
            "ready_file": str(folder / f"ready-{index}"),
            "timeout": FUNCTION_TIMEOUT,
            "retry_seconds": RETRY_SECONDS,
        }
        path = folder / f"worker-{index}.json"
        path.write_text(json.dumps(settings))
        workers.append(
            subprocess.Popen(  # our own module, this interpreter
                [sys.executable, "-m", "bench.burst_worker", str(path)],
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=environment,
            )
        )
    deadline = time.monotonic() + 120
    while not all((folder / f"ready-{index}").exists() for index in range(instances)):  # their cold starts
        if time.monotonic() > deadline or any(worker.poll() is not None for worker in workers):
            raise RuntimeError("a submit worker did not start")
        time.sleep(0.2)
    return workers


def _finished(worker: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = worker.communicate(timeout=FUNCTION_TIMEOUT + 60)
    lines = out.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"failures": 0, "timeouts": 0, "uncertain": 0}


def _send_and_drain(
    sqs: Any, url: str, bodies: list[str], decided: Callable[[], bool], deadline: float
) -> tuple[list[float], bool]:
    """Every message sent at once (ten to a call, on a few threads), then wait until the queue is empty, or
    nothing is waiting to be received and every drop is decided. (The emulator, under load, may lose the
    answer of a ReceiveMessage it applied: those messages stay in flight for the queue's 720 s, as they
    would in AWS, though their drops were handled from the copy botocore received again.)
    Returns when each was sent, and whether the deadline came first."""
    sent_at = [0.0] * len(bodies)

    def send(starts: range) -> None:
        for start in starts:
            at = time.time()
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(index), "MessageBody": body} for index, body in enumerate(bodies[start : start + 10])
                ],
            )
            sent_at[start : start + 10] = [at] * len(bodies[start : start + 10])

    starts = list(range(0, len(bodies), 10))
    senders = [threading.Thread(target=send, args=(starts[part::4],)) for part in range(4)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    ends = time.monotonic() + deadline
    empty = 0
    while time.monotonic() < ends:
        time.sleep(0.5)
        empty = empty + 1 if _depth(sqs, url, in_flight=True) == 0 else 0
        if empty >= 2 or (_depth(sqs, url, waiting=True) == 0 and decided()):
            return sent_at, False
    return sent_at, True


def _run_id(body: str) -> str:
    s3 = json.loads(body)["Records"][0]["s3"]
    return Submitter.run_id(
        SpecSource(
            bucket=s3["bucket"]["name"],
            key=s3["object"]["key"],
            version_id=s3["object"].get("versionId"),
            etag=s3["object"]["eTag"],
            sequencer=s3["object"]["sequencer"],
        )
    )


def _all_decided(queries: RecordQueries, run_ids: list[str]) -> bool:
    runs = queries.get_runs(run_ids)
    return len(runs) == len(run_ids) and all(run.status != "submitting" for run in runs.values())


def _depth(sqs: Any, url: str, *, in_flight: bool = False, waiting: bool = False) -> int:
    names = ["ApproximateNumberOfMessages"]
    if in_flight:
        names += ["ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
    if waiting:
        names += ["ApproximateNumberOfMessagesDelayed"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes.get(name, 0)) for name in names)


def _latencies(
    aws: SeparateEmbeddedAws, table: str, bodies: list[str], sent_at: list[float]
) -> tuple[list[float], int]:
    """Seconds from each drop's message to its run's `submitted_at`, and how many runs were submitted."""
    ids = [_run_id(body) for body in bodies]
    runs = RecordQueries(aws.client("dynamodb"), table).get_runs(ids)
    latencies = []
    for run_id, at in zip(ids, sent_at, strict=True):
        run = runs.get(run_id)
        if run is not None and run.submitted_at is not None:
            latencies.append(run.submitted_at.timestamp() - at)
    return latencies, len(latencies)


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
