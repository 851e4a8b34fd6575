"""The submit path (issue 3): handler time per drop against the floor of AWS calls, awscli, memory.

Against the embedded AWS (moto, threaded, in a process of its own so that its
memory is not ours), in one run:

- **handler**: 500 drops of the example specs, mixed, through the submit
  handler in SQS batches of 10, then the publish function over the changes
  they recorded (the receipts and events: the outbox) — the time per drop
  of both.
- **floor**: the bare AWS calls the same drops need, made directly with boto3
  (GetObject, a conditional PutItem, then per job SubmitJob and PutItem, a
  PutObject receipt, a Publish) — no validation, no planning, no batching.
- **awscli**: the seed tooling — one `aws batch submit-job` process per job.
- **peak memory** of the handler's process (the handler runs in a process of its own).

The cold start is `bench.coldstart`'s.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from typing import Any
from urllib.parse import unquote_plus

from batchdrop_local.emulator import SeparateEmbeddedAws
from batchdrop_local.local_stack import create_stack
from batchdrop_local.notifications import StoredObject, s3_put_event, upload
from batchdrop_local.stack_model import LocalFunction

from batchdrop.platform.config import parse_platform_config
from batchdrop.platform.planning import Plan, check_and_plan
from batchdrop.store.items import job_item, run_item
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import Receipt, RunRecord, SpecSource, utc_now
from batchdrop.submit.job_records import submitted_job_record
from batchdrop.submit.submitter import Submitter
from bench.report import (
    ROOT,
    Figure,
    against_separate_aws,
    outbox,
    run_worker,
    tell_in_own_process,
)

DROPS = 500
BATCH = 10
FLOOR_TARGET = 1.1
MEMORY_TARGET_MB = 150
AWSCLI_JOBS = 20
SPECS = sorted((ROOT / "examples" / "specs").iterdir())


def _team(raw: bytes) -> str:
    return "forecasting" if b"team: forecasting" in raw or b'"forecasting"' in raw else "vision"


def run() -> list[Figure]:
    return against_separate_aws(_measure)


def _measure(aws: SeparateEmbeddedAws) -> list[Figure]:
    stack = create_stack(aws)
    bucket = stack.outputs["JobsBucketName"]
    s3 = aws.client("s3")
    drops: list[tuple[StoredObject, bytes]] = []
    for index in range(DROPS):
        spec = SPECS[index % len(SPECS)]
        raw = spec.read_bytes()
        drops.append((upload(s3, bucket, f"incoming/{_team(raw)}/bench/{index:04d}-{spec.name}", raw), raw))
    aws.client("sqs").purge_queue(QueueUrl=stack.outputs["IntakeQueueUrl"])  # moto's own notifications

    function = stack.functions["SubmitFunction"]
    events = [s3_put_event(*(stored for stored, _ in drops[start : start + BATCH])) for start in range(0, DROPS, BATCH)]
    handler_seconds, peak_mb, jobs = _handler_in_own_process(aws, function, events)
    told = tell_in_own_process(aws, stack, outbox(aws, stack))
    assert told["failures"] == 0, told

    floor_seconds = _floor(aws, stack.outputs, drops)
    per_drop, floor_per_drop = (handler_seconds + told["seconds"]) / DROPS, floor_seconds / DROPS
    ratio = per_drop / floor_per_drop
    figures = [
        Figure(
            f"submit + publish, {DROPS} drops ({jobs} jobs) in batches of {BATCH}",
            per_drop * 1000,
            "ms per drop",
            detail=f"submit {handler_seconds / DROPS * 1000:.2f} ms, publish {told['seconds'] / DROPS * 1000:.2f} ms"
            f" ({told['changes']} changes read from the stream)",
        ),
        Figure("floor: the bare AWS calls of the same drops", floor_per_drop * 1000, "ms per drop"),
        Figure(
            "(submit + publish) / floor",
            ratio,
            "×",
            target=f"≤ {FLOOR_TARGET}",
            within=ratio <= FLOOR_TARGET,
        ),
        Figure(
            "peak memory of the handler process",
            peak_mb,
            "MB",
            target=f"≤ {MEMORY_TARGET_MB} MB",
            within=peak_mb <= MEMORY_TARGET_MB,
        ),
    ]
    figures += _awscli(aws, handler_seconds / jobs)
    return figures


def _handler_in_own_process(
    aws: SeparateEmbeddedAws, function: LocalFunction, events: list[dict[str, Any]]
) -> tuple[float, float, int]:
    """Run the handler over the events in a process of its own (a warm Lambda after its cold start).
    SubmitJob's pacing is set far above what one process reaches: what is measured here is the handler's
    own cost over its calls (the booking of SubmitJob slots included); keeping to the account's rate, and
    the waits it takes, are the *burst* benchmark's."""
    unpaced = {**function.environment, "SUBMIT_JOBS_PER_SECOND": "10000"}
    figures = run_worker(aws, "submit", unpaced, events)
    assert figures["failures"] == 0, figures
    table = RecordQueries(aws.client("dynamodb"), function.environment["TABLE_NAME"])
    jobs = 0
    for event in events:
        for record in event["Records"]:
            s3 = json.loads(record["body"])["Records"][0]["s3"]
            source = SpecSource(
                bucket=s3["bucket"]["name"],
                key=unquote_plus(s3["object"]["key"]),
                version_id=s3["object"].get("versionId"),
                etag=s3["object"]["eTag"],
            )
            run = table.get_run(Submitter.run_id(source))
            jobs += len(run.jobs) if run else 0
    return figures["seconds"], figures["peak_mb"], jobs


def _floor(aws: SeparateEmbeddedAws, outputs: dict[str, str], drops: list[tuple[StoredObject, bytes]]) -> float:
    """The AWS calls of each drop, made directly: what any implementation must at least do.

    The payloads are the handler's own (the same items, receipt and event bodies), prepared
    before the clock starts, so the two sides differ only in what the handler does around them.
    """
    config = parse_platform_config((ROOT / "examples" / "platform.yaml").read_bytes())
    prepared = []
    for stored, raw in drops:
        plan = check_and_plan(raw, stored.key, team=_team(raw), config=config, run_id=uuid.uuid4().hex[:20])
        claim = _claim_record(stored, plan.run_id)
        prepared.append((stored, plan, run_item(claim), _job_item_template(claim, plan), _receipt(claim)))
    s3, dynamodb, batch, sns = (aws.client(name) for name in ("s3", "dynamodb", "batch", "sns"))
    table, topic = outputs["RecordsTableName"], outputs["EventsTopicArn"]
    started = time.perf_counter()
    for stored, plan, claim_item, job_template, receipt in prepared:
        s3.get_object(Bucket=stored.bucket, Key=stored.key, VersionId=stored.version_id)["Body"].read()
        dynamodb.put_item(TableName=table, Item=claim_item, ConditionExpression="attribute_not_exists(PK)")
        ids: dict[str, str] = {}
        for job in plan.jobs:
            ids[job.step] = batch.submit_job(**job.submit_request(ids))["jobId"]
            dynamodb.put_item(TableName=table, Item={**job_template, "PK": {"S": f"JOB#{ids[job.step]}"}})
        s3.put_object(Bucket=stored.bucket, Key=f"receipts/floor/{plan.run_id}.json", Body=receipt)
        sns.publish(TopicArn=topic, Message=receipt.decode())
    return time.perf_counter() - started


def _claim_record(stored: StoredObject, run_id: str) -> RunRecord:
    now = utc_now()
    return RunRecord(
        run_id=run_id,
        team="vision",
        status="submitting",
        source=SpecSource(bucket=stored.bucket, key=stored.key, version_id=stored.version_id, etag=stored.etag),
        received_at=now,
        claim_owner=uuid.uuid4().hex,
        claimed_at=now,
    )


def _job_item_template(claim: RunRecord, plan: Plan) -> dict[str, Any]:
    job = plan.jobs[0]
    return job_item(
        submitted_job_record(
            plan,
            job,
            job_id="placeholder",
            job_name=job.job_name,
            depends_on=[],
            source=claim.source,
            spec_digest="0" * 64,
            at=utc_now(),
        )
    )


def _receipt(claim: RunRecord) -> bytes:
    return json.dumps(Receipt.for_run(claim, []).model_dump(mode="json", by_alias=True), indent=2).encode()


def _awscli(aws: SeparateEmbeddedAws, handler_per_job: float) -> list[Figure]:
    """One `aws batch submit-job` process per job, as hand-written scripts do."""
    cli = ROOT / ".venv-tools" / "awscli" / "bin" / "aws"
    if not cli.exists():
        return [Figure("awscli per job", 0, "s", detail=f"skipped: {cli} missing (make bench installs it)")]
    config = parse_platform_config((ROOT / "examples" / "platform.yaml").read_bytes())
    raw = (ROOT / "examples" / "specs" / "gpu-finetune.yaml").read_bytes()
    request = check_and_plan(raw, "gpu-finetune.yaml", team="vision", config=config, run_id="a" * 20).jobs[0].request
    env = {**os.environ, **aws.environment()}
    started = time.perf_counter()
    for index in range(AWSCLI_JOBS):
        subprocess.run(
            [str(cli), "batch", "submit-job", "--cli-input-json", json.dumps({**request, "jobName": f"cli-{index}"})],
            check=True,
            capture_output=True,
            env=env,
        )
    per_job = (time.perf_counter() - started) / AWSCLI_JOBS
    return [
        Figure("awscli: one `aws batch submit-job` process per job", per_job * 1000, "ms per job"),
        Figure(
            "awscli / handler, per job",
            per_job / handler_per_job,
            "×",
            detail=f"the handler submits (and records, and tells) a job in {handler_per_job * 1000:.1f} ms",
        ),
    ]


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
