"""`python -m bench.burst_worker SETTINGS.json`: one submit instance and its SQS poller, as Lambda runs them.

The burst benchmark (`bench.burst`) starts `SubmitMaxConcurrency` of these. Each imports the submit
handler with the function's environment (its cold start, before the burst), then plays Lambda's SQS
event source: it receives up to 10 messages from the intake queue (real SQS on the embedded AWS: the
queue's redrive policy moves a message received `maxReceiveCount` times to the dead-letter queue),
invokes the handler, deletes what succeeded and leaves the reported failures to come back. A failed
message is made visible again after `retry_seconds` instead of the queue's visibility timeout (720 s:
far longer than a benchmark can wait; the failures are counted and reported). An invocation longer
than the function's timeout is one Lambda would have stopped: none of its messages are deleted.

Stops when the stop file exists and the queue gave it nothing; prints one JSON line of its counts,
among them the SubmitJob calls whose outcome was uncertain (a time-out, a lost connection, a 5xx: the
gateway's warning), which its silenced logs would otherwise hide.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from batchdrop_local.runtime import invoke, load_handler, sqs_record
from batchdrop_local.stack_model import REGION, LocalFunction

from batchdrop.gateways import batch as batch_gateway
from batchdrop.gateways.batch import BatchGateway
from batchdrop.gateways.submit_rate import SubmitRate
from bench.report import ROOT


def main(settings_path: str) -> None:
    settings = json.loads(Path(settings_path).read_text())
    function = LocalFunction(
        logical_id="SubmitFunction",
        code_dir=ROOT / "functions" / "submit",
        handler="app.lambda_handler",
        timeout=settings["timeout"],
        environment={},
        events={},
    )
    stdout = os.dup(1)
    counts = {"invocations": 0, "messages": 0, "failures": 0, "timeouts": 0, "seconds": 0.0, "uncertain": 0}
    with Path(os.devnull).open("w") as sink:
        os.dup2(sink.fileno(), 1)  # logs and EMF metrics: Lambda sends them down a pipe, not to a terminal
        try:
            module = load_handler(function)
            # after the handler's import, whose logging set-up replaces its loggers' handlers
            logging.getLogger(batch_gateway.__name__).addHandler(_UncertainSubmits(counts))
            _pace(module.submitter.batch, settings)
            sqs = boto3.client("sqs", region_name=REGION, endpoint_url=settings["endpoint"])
            Path(settings["ready_file"]).touch()
            _poll(sqs, function, module, settings, counts)
        finally:
            sys.stdout.flush()
            os.dup2(stdout, 1)
    print(json.dumps(counts))


class _UncertainSubmits(logging.Handler):
    """Counts the gateway's "SubmitJob outcome uncertain" warnings (each a SubmitJob settled by name)."""

    def __init__(self, counts: dict[str, Any]) -> None:
        super().__init__(logging.WARNING)
        self.counts = counts

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("SubmitJob outcome uncertain"):
            self.counts["uncertain"] += 1


def _pace(gateway: BatchGateway, settings: dict[str, Any]) -> None:
    """The design measured: the shared schedule the function builds, this instance's own share of the
    budget instead, or no pacing at all (each instance backs off on its own: before issue 17)."""
    if settings["pacing"] == "none":
        gateway.submit_rate = None
    elif settings["pacing"] == "own share":
        gateway.submit_rate = SubmitRate(settings["per_second"] / settings["instances"])


def _poll(sqs: Any, function: LocalFunction, module: Any, settings: dict[str, Any], counts: dict[str, Any]) -> None:
    url, arn = settings["queue_url"], settings["queue_arn"]
    stop = Path(settings["stop_file"])
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            if stop.exists():
                return
            continue
        event = {"Records": [sqs_record(message, arn) for message in messages]}  # as the local runtime makes them
        started = time.monotonic()
        try:
            response = invoke(function, module, event) or {}
            failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        except Exception:  # the invocation failed: every message comes back, as in Lambda
            failed = {message["MessageId"] for message in messages}
        seconds = time.monotonic() - started
        counts["invocations"] += 1
        counts["messages"] += len(messages)
        counts["seconds"] += seconds
        if seconds > settings["timeout"]:  # Lambda would have stopped it: nothing is deleted
            counts["timeouts"] += 1
            failed = {message["MessageId"] for message in messages}
        counts["failures"] += len(failed)
        done = [message for message in messages if message["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(done)
                ],
            )
        back = [message for message in messages if message["MessageId"] in failed]
        if back:
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {
                        "Id": str(index),
                        "ReceiptHandle": message["ReceiptHandle"],
                        "VisibilityTimeout": settings["retry_seconds"],
                    }
                    for index, message in enumerate(back)
                ],
            )


if __name__ == "__main__":
    main(sys.argv[1])
