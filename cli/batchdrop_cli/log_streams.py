"""CloudWatch log streams as `logs` reads them: a stream's lines so far, or its lines as they are written."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchdrop.gateways.log_links import log_url

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

MAX_LOG_LINES = 10_000
"""Per stream: `logs` is for reading what happened; the console pages through the rest."""


class LogStreams:
    """Reads log streams through a CloudWatch Logs client."""

    def __init__(self, *, logs: CloudWatchLogsClient, sleep: Callable[[float], None] = time.sleep) -> None:
        self.logs = logs
        self.sleep = sleep

    def url(self, group: str, stream: str) -> str:
        """The stream's page in the CloudWatch console, in the client's region."""
        return log_url(self.logs.meta.region_name, group, stream)

    def read(self, group: str, stream: str) -> tuple[list[tuple[datetime, str]], str | None]:
        """The stream's lines (up to `MAX_LOG_LINES`), or none and why they cannot be read."""
        lines: list[tuple[datetime, str]] = []
        arguments: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        try:
            while len(lines) < MAX_LOG_LINES:
                page = self.logs.get_log_events(**arguments)
                lines += [
                    (datetime.fromtimestamp(event["timestamp"] / 1000, tz=UTC), event["message"])
                    for event in page.get("events", [])
                ]
                token = page.get("nextForwardToken")
                if not page.get("events") or token == arguments.get("nextToken"):
                    break
                arguments["nextToken"] = token
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return [], "the log stream does not exist (yet, or any more): see the console link"
            if exc.response.get("Error", {}).get("Code") == "AccessDeniedException":
                return [], "you may not read this log group here: see the console link"
            raise
        return lines, None

    def follow(
        self, group: str, stream: str, *, still_running: Callable[[], bool], poll: float = 2.0
    ) -> Iterator[tuple[datetime, str]]:
        """A log stream's lines as they are written, until the job has ended (and its last lines are read)."""
        arguments: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        while True:
            running = still_running()  # asked before reading, so that nothing written before the end is missed
            events: list[Any] = []
            try:
                page = self.logs.get_log_events(**arguments)
                events = list(page.get("events", []))
                if page.get("nextForwardToken"):
                    arguments["nextToken"] = page["nextForwardToken"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise  # not found: not created yet
            for event in events:
                yield datetime.fromtimestamp(event["timestamp"] / 1000, tz=UTC), event["message"]
            if events:
                continue  # more may be waiting
            if not running:
                return
            self.sleep(poll)
