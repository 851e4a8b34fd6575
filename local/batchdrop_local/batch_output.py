"""What the local Batch tells: the "Batch Job State Change" events it publishes to EventBridge (kept
in an outbox and put ten at a time, once a tick) and the log lines its jobs write to CloudWatch Logs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from batchdrop_local.batch_jobs import LocalJob
from batchdrop_local.state_changes import epoch_ms, log_stream

LOG_GROUP = "/aws/batch/job"


class BatchOutput:
    def __init__(self, aws: Any) -> None:
        self.aws = aws
        self.events_sent = 0
        self._outbox: list[dict[str, Any]] = []
        aws.client("logs").create_log_group(logGroupName=LOG_GROUP)

    def publish(self, event: dict[str, Any]) -> None:
        self._outbox.append(event)

    def flush(self) -> None:
        events = self.aws.client("events")
        while self._outbox:
            chunk, self._outbox = self._outbox[:10], self._outbox[10:]
            entries = [
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "Resources": event["resources"],
                    "Time": datetime.now(UTC),
                }
                for event in chunk
            ]
            response = events.put_events(Entries=entries)
            self.events_sent += len(entries) - int(response.get("FailedEntryCount", 0))

    def write_logs(self, job: LocalJob, what: str, attempt: int | None = None) -> None:
        if ":" in job.view["jobId"]:
            return  # children's logs would be thousands of streams; their parent's story is told
        logs = self.aws.client("logs")
        stream = log_stream(job.view, attempt or len(job.attempts) + 1)
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        now = epoch_ms(datetime.now(UTC))
        lines = list(_story(job, what))
        logs.put_log_events(
            logGroupName=LOG_GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": now + index, "message": line} for index, line in enumerate(lines)],
        )


def _story(job: LocalJob, what: str) -> Iterator[str]:
    command = " ".join(job.view.get("container", {}).get("command", [])) or "the job definition's command"
    if what == "started":
        yield f"batchdrop local Batch: starting {command}"
        yield "loading data... 12,400 samples"
        return
    for epoch in range(1, 4):
        yield f"epoch {epoch}/3 loss={1.0 / epoch:.3f}"
    yield f"batchdrop local Batch: {what}"
