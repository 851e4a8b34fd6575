"""The whole control plane running on an embedded AWS: the stack from `template.yaml`, its
functions run by the local Lambda runtime, Batch played by the local lifecycle, Slack by a local
receiver. The demo watches one; the end-to-end and command-line tests drive one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batchdrop.platform.config import parse_platform_config
from batchdrop.store.queries import RecordQueries
from batchdrop_local import bridges
from batchdrop_local.batch_fleet import queue_arns
from batchdrop_local.batch_lifecycle import LocalBatch, Scenario
from batchdrop_local.emulator import EmbeddedAws, environment_of
from batchdrop_local.local_stack import EXAMPLE_PLATFORM, create_stack
from batchdrop_local.runtime import LocalLambda
from batchdrop_local.slack_receiver import SlackReceiver
from batchdrop_local.stack_model import STACK_NAME, Stack


class ControlPlane:
    """Started with `running()`; everything it started is stopped when that ends."""

    def __init__(
        self, aws: EmbeddedAws, *, scenario: Scenario, speed: float = 1.0, slack_journal: Path | None = None
    ) -> None:
        self.aws = aws
        self.scenario = scenario
        self.speed = speed
        self.slack = SlackReceiver(slack_journal)

    @contextmanager
    def running(self) -> Iterator[ControlPlane]:
        """The stack created afresh and every part running; this process's boto3 points at the emulator."""
        parts: list[Any] = []
        self.slack.start()
        try:
            with environment_of(self.aws):
                try:
                    self._start(parts)
                    yield self
                finally:
                    for part in reversed(parts):
                        part.stop()
        finally:
            self.slack.stop()

    def _start(self, parts: list[Any]) -> None:
        self.stack: Stack = create_stack(self.aws)
        self.table = RecordQueries(self.aws.client("dynamodb"), self.stack.outputs["RecordsTableName"])
        config = parse_platform_config(EXAMPLE_PLATFORM.read_bytes())
        webhooks = {team: self.slack.url(team) for team in config.teams}
        self.aws.client("secretsmanager").put_secret_value(
            SecretId=self.stack.outputs["SlackWebhooksSecretArn"], SecretString=json.dumps(webhooks)
        )
        bridges.stand_in_stack_outputs(self.aws, STACK_NAME, self.stack.outputs)
        parts.append(bridges.S3Notifications(self.aws, self.stack).start())
        self.runtime = LocalLambda(self.aws, self.stack, speed=self.speed, batching_window_scale=0.1).start()
        parts.append(self.runtime)
        self.batch = LocalBatch(
            self.aws,
            queues=queue_arns(config),
            table=self.stack.outputs["RecordsTableName"],
            scenario=self.scenario,
            speed=self.speed,
        ).start()
        parts.append(self.batch)

    @property
    def bucket(self) -> str:
        return self.stack.outputs["JobsBucketName"]
