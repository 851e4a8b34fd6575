"""The items the report's and Slack's figures live in stay within DynamoDB's 400 KB item limit with every
field at its bound, by construction: a 10,000-child array's children item with every run-time bucket
counted, the largest sweep Batch can be sent kept in its item beside its job (and not on its record, every
other field of which at its worst), and a 1,000-node job's record keeping every node's end. Sizes by
DynamoDB's own rule (names and values, with its overheads), not guessed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from batchdrop.events.contract import LogLink
from batchdrop.limits import (
    DYNAMODB_ITEM_BYTES,
    FAILED_CHILD_LOGS,
    NODE_END_BYTES,
    NODE_FAILURE_MIN_CHARS,
    RECORD_BYTES,
    SWEEP_RECORD_BYTES,
)
from batchdrop.platform.batch_limits import MAX_REQUEST_BYTES
from batchdrop.spec.sweep import compact_indices
from batchdrop.store.child_states import CHILD_CODES, RUN_TIME_BUCKETS
from batchdrop.store.items import Children, deserialize, job_item, serialize, sweep_items
from batchdrop.store.job_states import JobStates
from batchdrop.store.records import AttemptEnd, JobRecord, NodeEnd, Transition, kept_sweep
from tests.recordkit import T0, job_record

CHILDREN = 10_000
"""Batch's largest array."""
NODES = 1_000
"""Batch's most nodes in a multi-node parallel job."""
WORDS = "w" * 1024
"""Any text Batch or tracking may put in a field (a reason, a failure in words), longer than any does."""


def attribute_bytes(value: dict[str, Any]) -> int:
    """An attribute value's size as DynamoDB counts it: UTF-8 text, numbers by their digits, and three bytes
    plus one an element for a list or map (a map's keys counted as text)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":  # a byte for two digits and one more: rounded up here
        return len(inner.lstrip("-").replace(".", "")) // 2 + 2
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "L":
        return 3 + sum(1 + attribute_bytes(item) for item in inner)
    if kind == "M":
        return 3 + sum(len(name.encode()) + 1 + attribute_bytes(item) for name, item in inner.items())
    raise AssertionError(f"unexpected DynamoDB type {kind}")


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_bytes(value) for name, value in item.items())


class PutRecorder:
    """A DynamoDB client that keeps what it was asked to put (the store's own item, not a copy of its code)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def put_item(self, **arguments: Any) -> dict[str, Any]:
        self.items.append(arguments["Item"])
        return {}


def fullest_job(job_id: str) -> JobRecord:
    """A job record with every field a job's life can fill at its worst: ten attempts that each failed with
    long reasons, every log link, a recovery story, a long dependency list, and the children of a 10,000-child
    recovery and resume in the longest compact ranges (every other index)."""
    every_other = compact_indices(list(range(0, CHILDREN, 2)))
    end = AttemptEnd(attempt=1, status_reason=WORDS, reason=WORDS, failure=WORDS, failure_class="other", exit_code=1)
    ends = [end.model_copy(update={"attempt": number}) for number in range(1, 11)]
    passed = [
        Transition(status=status, at=T0 + timedelta(minutes=minute), reason=WORDS, attempt=10, attempt_end=ends[-1])
        for minute, status in enumerate(["RUNNABLE", "STARTING", "RUNNING", "FAILED"])
    ]
    link = LogLink(attempt=1, log_group="/aws/batch/job", log_stream="s" * 512, url="https://" + "u" * 1024)
    return job_record(job_id, "sweep", array_size=CHILDREN).model_copy(
        update={
            "depends_on": [f"{index:036d}" for index in range(100)],
            "status": "FAILED",
            "status_reason": WORDS,
            "attempts": 10,
            "max_attempts": 10,
            "failure_class": "out_of_memory",
            "failure": WORDS,
            "attempt_ends": ends,
            "passed": passed,
            "log_links": [link.model_copy(update={"attempt": number}) for number in range(1, 11)],
            "children": dict.fromkeys(CHILD_CODES, CHILDREN),
            "status_summary": dict.fromkeys(CHILD_CODES, CHILDREN),
            "recovery_story": [WORDS] * 10,
            "recovery_final": WORDS,
            "stuck_reported": WORDS,
            "stuck_advice": WORDS,
            "child_indices": every_other,
            "reused_children": every_other,
        }
    )


def test_a_10000_child_arrays_children_item_with_every_run_time_bucket_is_small() -> None:
    client = PutRecorder()
    children = Children(
        states="z6" * CHILDREN,
        version=10**9,
        counts=dict.fromkeys(CHILD_CODES, CHILDREN),
        run_times=dict.fromkeys(range(RUN_TIME_BUCKETS), CHILDREN),
    )
    JobStates(client, "records").put_children("arr", children, read_version=0)  # type: ignore[arg-type]
    (item,) = client.items
    size = item_bytes(item)
    assert size < 25 * 1024, f"two characters a child and 44 counts: {size:,} bytes"
    assert len(deserialize(item)["run_times"]) == RUN_TIME_BUCKETS


def test_a_10000_child_arrays_children_item_with_every_failed_childs_log_at_its_longest_is_small() -> None:
    client = PutRecorder()
    longest = 512  # CloudWatch's longest log group and log stream names
    children = Children(
        states="z6" * CHILDREN,
        version=10**9,
        counts=dict.fromkeys(CHILD_CODES, CHILDREN),
        run_times=dict.fromkeys(range(RUN_TIME_BUCKETS), CHILDREN),
        failed_logs={CHILDREN - 1 - index: ("g" * longest, "s" * longest) for index in range(FAILED_CHILD_LOGS)},
    )
    JobStates(client, "records").put_children("arr", children, read_version=0)  # type: ignore[arg-type]
    (item,) = client.items
    size = item_bytes(item)
    assert size < 50 * 1024, f"two characters a child, 44 counts and {FAILED_CHILD_LOGS} logs: {size:,} bytes"
    assert len(deserialize(item)["failed_logs"]) == FAILED_CHILD_LOGS


def test_the_largest_sweep_batch_can_be_sent_is_kept_beside_its_record_which_fits_with_every_field_at_its_worst() -> (
    None
):
    # One axis of values as long as Batch's 30 KiB request can carry at all (the prelude and command need more).
    sweep = {"input": [f"s3://bucket/{index:04d}/" + "x" * 40 for index in range(MAX_REQUEST_BYTES // 60)]}
    kept = kept_sweep(sweep)
    assert kept == sweep, "whatever Batch accepts is kept whole"
    record = fullest_job("sweep-job").model_copy(update={"sweep": kept})
    size = item_bytes(job_item(record))
    assert size == item_bytes(job_item(record.model_copy(update={"sweep": None}))), "none of it on the record"
    assert size <= RECORD_BYTES < DYNAMODB_ITEM_BYTES, f"{size:,} bytes"
    (item,) = sweep_items([record])
    sweep_size = item_bytes(item)
    assert sweep_size <= SWEEP_RECORD_BYTES + 64, f"its own item, written once: {sweep_size:,} bytes"


def test_a_1000_node_jobs_record_keeps_every_nodes_end_within_the_item_limit() -> None:
    end = NodeEnd(
        attempt=10,
        status="FAILED",
        exit_code=-2_147_483_648,
        failure_class="out_of_memory",
        failure=WORDS,
        log_stream="vision-ddp-trainer-v3/default/" + "0" * 32,  # Batch's: job definition/default/task id
    ).fitted()
    assert end.log_stream is not None, "a usual log stream is kept: the words are cut to make room"
    assert end.failure is not None
    assert len(end.failure) >= NODE_FAILURE_MIN_CHARS
    rest = fullest_job("mnp").model_copy(update={"array_size": None, "child_indices": None, "reused_children": None})
    record = rest.model_copy(update={"nodes": NODES})
    item = job_item(record) | {"node_ends": serialize({"m": {str(node): end.stored() for node in range(NODES)}})["m"]}
    ends_size = attribute_bytes(item["node_ends"])
    assert item_bytes(job_item(rest)) < 90 * 1024, "the rest of the record at its worst (limits.NODE_END_BYTES)"
    assert ends_size <= NODES * NODE_END_BYTES, f"{ends_size:,} bytes"
    assert item_bytes(item) < DYNAMODB_ITEM_BYTES - 64 * 1024, "with room to spare"
