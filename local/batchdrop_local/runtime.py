"""Running the template's functions as Lambda would: each in a process of its own (`sandbox`)."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from batchdrop_local import bridges
from batchdrop_local.sandbox import Sandbox, invoke, load_handler
from batchdrop_local.stack_model import ACCOUNT_ID, REGION, LocalFunction
from batchdrop_local.streams import StreamReader, matches

__all__ = ["LocalLambda", "invoke", "load_handler"]  # the tests import a function's module and invoke it here

logger = logging.getLogger(__name__)


class LocalLambda:
    """LAMBDA EXECUTION. moto runs no function code without Docker, so this plays Lambda's part for
    the template's functions: each function gets a process of its own (`sandbox.Sandbox`, as Lambda
    gives each its own execution environment) where its module is imported with its environment
    (its cold start), and its event sources, polled here as the template declares them, invoke it:

    - **SQS** (event source mappings): the queue is polled, up to `BatchSize` messages are gathered
      within `MaximumBatchingWindowInSeconds`, and the handler gets the SQS event Lambda would give.
      With `ReportBatchItemFailures` the messages it reports failed stay on the queue (the others are
      deleted); if it raises, they all stay. They come back (RETRY DELAYS) and, after the queue's
      redrive count, go to its dead-letter queue: SQS's own redrive, as in AWS.
    - **SNS** (SNS TO LAMBDA): messages arrive through a stand-in queue and are handed over as the SNS
      event; as for any asynchronous invocation, a failure is retried `MaximumRetryAttempts` times
      and then sent to the `EventInvokeConfig` on-failure destination.
    - **DynamoDB** (DYNAMODB STREAMS TO LAMBDA): the table's stream is read from its start, records
      that pass the `FilterCriteria` are handed over in batches of `BatchSize`, and with
      `ReportBatchItemFailures` the batch is handed over again from the first record reported failed.
    - **Schedule** (SCHEDULES): invoked at the rule's rate (divided by `speed`) with EventBridge's
      Scheduled Event (or the rule's `Input`, as EventBridge sends it), with the same asynchronous retries.
    """

    def __init__(
        self, aws: Any, stack: Any, *, speed: float = 1.0, poll: float = 0.1, batching_window_scale: float = 1.0
    ) -> None:
        self.aws = aws
        self.stack = stack
        self.speed = speed
        self.poll = poll
        self.batching_window_scale = batching_window_scale
        """BATCHING WINDOWS: Lambda waits up to MaximumBatchingWindowInSeconds to fill a batch; a
        demo may shorten that wait (0.1 gives a tenth of it) to show more, sooner."""
        self.sandboxes = {logical_id: Sandbox(function).start() for logical_id, function in stack.functions.items()}
        try:
            for sandbox in self.sandboxes.values():  # the cold starts, side by side
                sandbox.ready()
        except Exception:
            for sandbox in self.sandboxes.values():
                sandbox.stop()
            raise
        self.invocations: dict[str, int] = dict.fromkeys(stack.functions, 0)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> LocalLambda:
        for function in self.stack.functions.values():
            for name, source in function.events.items():
                kind, properties = source["Type"], source.get("Properties", {})
                if kind == "SQS":
                    target: Callable[[], None] = partial(self._poll_sqs, function, properties)
                elif kind == "SNS":
                    queue = bridges.sns_subscription_queue(
                        self.aws, properties["Topic"], f"{function.logical_id}-{name}", properties
                    )
                    target = partial(self._poll_sns, function, queue)
                elif kind == "DynamoDB":
                    target = partial(self._poll_stream, function, properties)
                elif kind == "Schedule":
                    target = partial(self._schedule, function, properties)
                else:
                    raise NotImplementedError(f"{function.logical_id}.{name}: no local event source for {kind}")
                thread = threading.Thread(target=target, name=f"{function.logical_id}-{name}", daemon=True)
                self._threads.append(thread)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for sandbox in self.sandboxes.values():
            sandbox.stop()

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        self.invocations[logical_id] += 1
        return self.sandboxes[logical_id].invoke(event)

    # ------------------------------------------------------------------ SQS event source mappings

    def _poll_sqs(self, function: LocalFunction, properties: dict[str, Any]) -> None:
        sqs = self.aws.client("sqs")
        arn = properties["Queue"]
        url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"]
        size = int(properties.get("BatchSize", 10))
        window = float(properties.get("MaximumBatchingWindowInSeconds", 0)) * self.batching_window_scale / self.speed
        partial_failures = "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", [])
        while not self._stop.is_set():
            messages = self._gather(sqs, url, size, window)
            if not messages:
                self._stop.wait(self.poll)
                continue
            event = {"Records": [sqs_record(message, arn) for message in messages]}
            try:
                response = self.invoke(function.logical_id, event)
                failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
                if not partial_failures:
                    failed = set()
            except Exception:
                logger.exception("local invocation failed", extra={"function": function.logical_id})
                failed = {message["MessageId"] for message in messages}
            done = [message for message in messages if message["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                        for index, message in enumerate(done[start : start + 10])
                    ],
                )
            for message in messages:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=bridges.retry_delay_seconds(self.speed),
                    )

    def _gather(self, sqs: Any, url: str, size: int, window: float) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + window
        while len(messages) < size and not self._stop.is_set():
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0 if messages else 1,  # long polling, as Lambda's pollers do
            ).get("Messages", [])
            messages += batch
            if not batch and (not messages or time.monotonic() >= deadline):
                break
            if not batch:
                self._stop.wait(self.poll / 2)
        return messages

    # ------------------------------------------------------------------ DynamoDB stream event source mappings

    def _poll_stream(self, function: LocalFunction, properties: dict[str, Any]) -> None:
        reader = StreamReader(self.aws, properties["Stream"])
        size = int(properties.get("BatchSize", 100))
        filters = properties.get("FilterCriteria", {}).get("Filters", [])
        waiting: list[dict[str, Any]] = []
        while not self._stop.is_set():
            waiting += [record for record in reader.read() if matches(record, filters)]
            if not waiting:
                self._stop.wait(self.poll)
                continue
            batch = waiting[:size]
            try:
                response = self.invoke(function.logical_id, {"Records": batch})
                failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
            except Exception:
                logger.exception("local invocation failed", extra={"function": function.logical_id})
                failed = {batch[0]["dynamodb"]["SequenceNumber"]}
            numbers = [record["dynamodb"]["SequenceNumber"] for record in batch]
            first_failed = min((numbers.index(number) for number in failed if number in numbers), default=None)
            if first_failed is None:
                waiting = waiting[len(batch) :]
            else:  # handed over again from the first failed record, after a pause
                waiting = waiting[first_failed:]
                self._stop.wait(bridges.retry_delay_seconds(self.speed))

    # ------------------------------------------------------------------ asynchronous invocations

    def _poll_sns(self, function: LocalFunction, queue_url: str) -> None:
        sqs = self.aws.client("sqs")
        subscription = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{function.logical_id}-subscription"
        while not self._stop.is_set():
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
            if not messages:
                self._stop.wait(self.poll)
                continue
            for message in messages:  # SNS invokes a function once per message
                self._invoke_async(function, bridges.sns_event_from_queue(message, subscription))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _schedule(self, function: LocalFunction, properties: dict[str, Any]) -> None:
        every = _rate_seconds(properties["Schedule"]) / self.speed
        while not self._stop.wait(every):
            if "Input" in properties:  # EventBridge sends a rule's constant input instead of its event
                self._invoke_async(function, json.loads(properties["Input"]))
                continue
            self._invoke_async(
                function,
                {
                    "version": "0",
                    "id": str(uuid.uuid4()),
                    "detail-type": "Scheduled Event",
                    "source": "aws.events",
                    "account": ACCOUNT_ID,
                    "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": REGION,
                    "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{function.logical_id}-schedule"],
                    "detail": {},
                },
            )

    def _invoke_async(self, function: LocalFunction, event: dict[str, Any]) -> None:
        config = self._invoke_config(function)
        attempts = 1 + int(config.get("MaximumRetryAttempts", 2))
        for attempt in range(attempts):
            try:
                self.invoke(function.logical_id, event)
                return
            except Exception as exc:
                logger.warning(
                    "asynchronous invocation failed",
                    extra={"function": function.logical_id, "attempt": attempt + 1, "error": str(exc)},
                )
                error = exc
            self._stop.wait(bridges.retry_delay_seconds(self.speed))
        destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination:
            self._send_failure(function, destination, event, error, attempts)

    def _invoke_config(self, function: LocalFunction) -> dict[str, Any]:
        declared = self.stack.resolver.template["Resources"][function.logical_id].get("Properties", {})
        config: dict[str, Any] = self.stack.resolver.resolve(declared.get("EventInvokeConfig", {}))
        return config

    def _send_failure(
        self, function: LocalFunction, destination: str, event: dict[str, Any], error: Exception, attempts: int
    ) -> None:
        """What Lambda sends to an SQS on-failure destination when retries are exhausted."""
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function.logical_id}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
        }
        sqs = self.aws.client("sqs")
        url = sqs.get_queue_url(QueueName=destination.rsplit(":", 1)[1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A received SQS message as Lambda's event source mapping hands it to a function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def _rate_seconds(expression: str) -> float:
    """`rate(5 minutes)` -> 300."""
    amount, unit = expression.removeprefix("rate(").removesuffix(")").split()
    return float(amount) * {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}[unit]
