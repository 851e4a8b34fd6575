"""`batchdrop logs --node N` (docs/multinode.md): node N's log, read from the log group its end kept on the
job's record names (`JobRecord.node_ends`; none: Batch's default), as Slack's and the report's links are."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any, cast

import pytest

from batchdrop.gateways.log_links import DEFAULT_LOG_GROUP
from batchdrop.store.records import AttemptEnd, NodeEnd, Transition
from batchdrop_cli.run_logs import RunLogs
from batchdrop_cli.run_views import RunView
from tests.recordkit import at, job_record

STREAM = "ddp/default/node-2"


class Streams:
    """CloudWatch Logs as `RunLogs` reads it: which group and stream it was asked for."""

    def __init__(self) -> None:
        self.read_from: list[tuple[str, str]] = []

    def read(self, group: str, stream: str) -> tuple[list[tuple[datetime, str]], str | None]:
        self.read_from.append((group, stream))
        return [(at(9), "NCCL error: peer lost")], None


def node_logs(kept: NodeEnd | None) -> tuple[RunLogs, Streams]:
    end = AttemptEnd(attempt=1, node=2, exit_code=2, failure_class="non_zero_exit", log_stream=STREAM)
    failed = Transition(status="node 2 FAILED", at=at(9), attempt=1, attempt_end=end)
    job = job_record("m", "train").model_copy(
        update={"nodes": 3, "status": "FAILED", "node_ends": {"2": kept} if kept else {}}
    )
    view = RunView.model_construct(jobs=[job])  # type: ignore[call-arg]  # only its jobs are read
    table = argparse.Namespace(with_history=lambda record: record.model_copy(update={"history": {failed.key: failed}}))
    streams = Streams()
    runs = argparse.Namespace(view=lambda run_id: view)
    return RunLogs(
        runs=cast(Any, runs), table=cast(Any, table), batch=cast(Any, None), streams=cast(Any, streams)
    ), streams


@pytest.mark.parametrize(
    ("kept_group", "read_group"),
    [("/aws/batch/ddp-training", "/aws/batch/ddp-training"), (None, DEFAULT_LOG_GROUP)],
)
def test_a_nodes_log_is_read_from_the_group_its_kept_end_names(kept_group: str | None, read_group: str) -> None:
    kept = NodeEnd(attempt=1, status="FAILED", exit_code=2, log_group=kept_group, log_stream=STREAM)
    run_logs, streams = node_logs(kept)
    [section] = run_logs.sections("r1", node=2)
    assert streams.read_from == [(read_group, STREAM)]
    assert (section.node, section.log_group, section.log_stream) == (2, read_group, STREAM)
    assert section.lines[0][1] == "NCCL error: peer lost"


def test_a_nodes_log_without_a_kept_end_is_read_from_batchs_default_group() -> None:
    run_logs, streams = node_logs(None)  # a record tracked before node ends were kept
    run_logs.sections("r1", node=2)
    assert streams.read_from == [(DEFAULT_LOG_GROUP, STREAM)]
