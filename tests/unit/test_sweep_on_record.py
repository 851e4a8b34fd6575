"""A sweep's job keeps its axes and values (for the report's failed children), whole or not at all
(`limits.SWEEP_RECORD_BYTES`), in an item of its own beside the record (`JOB#<id>` / `SWEEP`): never on the
record, which every state change updates at the price of its whole size."""

from __future__ import annotations

import json
from typing import Any

from batchdrop_local.streams import matches
from batchdrop_local.template import load_template

from batchdrop.limits import SWEEP_RECORD_BYTES
from batchdrop.spec.sweep import child_values
from batchdrop.store.claims import RunClaims
from batchdrop.store.items import RETENTION, deserialize, expiry, job_item, sweep_items, sweep_of
from batchdrop.store.records import JobRecord, kept_sweep
from batchdrop.store.recoveries import Recoveries
from tests.recordkit import job_record, run_of_jobs


def test_a_sweep_is_kept_whole_in_the_specs_order() -> None:
    sweep = {"lr": ["0.1", "0.01"], "batch": ["32", "64"]}
    kept = kept_sweep(sweep)
    assert kept == sweep
    assert list(kept) == ["lr", "batch"]
    assert child_values(kept, 3) == {"lr": "0.01", "batch": "64"}


def test_a_sweep_over_its_bound_is_not_kept() -> None:
    values = [f"s3://bucket/experiments/{index:05d}/" + "x" * 60 for index in range(5_000)]
    assert len(json.dumps({"experiment": values}).encode()) > SWEEP_RECORD_BYTES
    assert kept_sweep({"experiment": values, "seed": ["1", "2"]}) is None


def test_no_sweep_keeps_nothing() -> None:
    assert kept_sweep(None) is None
    assert kept_sweep({}) is None


def test_a_sweep_is_kept_beside_its_job_in_the_specs_order_and_never_on_its_record() -> None:
    sweep = {"seed": ["3", "1", "2"], "lr": ["0.1", "0.01"], "batch": ["64", "32"]}  # not in any sorted order
    job = job_record("sweep-1", "sweep", array_size=12).model_copy(update={"sweep": kept_sweep(sweep)})
    assert "sweep" not in deserialize(job_item(job)), "the record every state change updates stays small"
    (item,) = sweep_items([job])
    stored = deserialize(item)
    assert (stored["PK"], stored["SK"], stored["kind"]) == ("JOB#sweep-1", "SWEEP", "sweep")
    assert stored["expires_at"] == expiry(job.submitted_at, RETENTION), "with the job's first transition"
    assert list(sweep_of(item)) == ["seed", "lr", "batch"], "a child's values depend on the axes' order"
    assert child_values(sweep_of(item), 5) == child_values(sweep, 5)


def test_a_job_without_a_kept_sweep_has_no_sweep_item() -> None:
    assert sweep_items([job_record("plain", "main"), job_record("array", "main", array_size=4)]) == []


class WriteRecorder:
    """A DynamoDB client that keeps the items it was asked to write, by call (the stores' own items)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        (requests,) = RequestItems.values()
        self.calls.append(("batch_write_item", [request["PutRequest"]["Item"] for request in requests]))
        return {}

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(("transact_write_items", [item["Put"]["Item"] for item in TransactItems]))
        return {}

    def put_item(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(("put_item", [arguments["Item"]]))
        return {}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        return {"Responses": {}}  # nothing written before

    def written(self, sort_key: str) -> list[tuple[str, str]]:
        """(call, PK) of every item of `sort_key` written."""
        return [(call, item["PK"]["S"]) for call, items in self.calls for item in items if item["SK"]["S"] == sort_key]


SWEEP = {"lr": ["0.1", "0.01"], "seed": ["1", "2"]}


def sweep_job(job_id: str) -> JobRecord:
    return job_record(job_id, "sweep", array_size=4).model_copy(update={"sweep": SWEEP})


def test_a_fresh_runs_sweeps_are_written_in_the_batch_of_its_records() -> None:
    client = WriteRecorder()
    jobs = [sweep_job("s1"), job_record("j2", "after")]
    RunClaims(client, "records", sleep=lambda seconds: None).write_new([run_of_jobs(jobs)], jobs)  # type: ignore[arg-type]
    assert client.written("SWEEP") == [("batch_write_item", "JOB#s1")]
    assert client.written("JOB") == [("batch_write_item", "JOB#s1"), ("batch_write_item", "JOB#j2")]


def test_a_resumed_claims_sweeps_are_written_before_the_transaction_that_records_its_jobs() -> None:
    client = WriteRecorder()
    jobs = [sweep_job("s1")]
    RunClaims(client, "records", sleep=lambda seconds: None).finish_run(  # type: ignore[arg-type]
        run_of_jobs(jobs), jobs, {"s1": ["a" * 16] * 4}
    )
    assert [call for call, _ in client.calls] == ["batch_write_item", "transact_write_items"]
    assert client.written("SWEEP") == [("batch_write_item", "JOB#s1")]
    assert client.written("H#000#0#SUBMITTED") == [("batch_write_item", "JOB#s1")], "its history's first entry too"
    assert client.written("CHILD_HASHES") == [("batch_write_item", "JOB#s1")]
    assert client.written("JOB") == [("transact_write_items", "JOB#s1")]


def test_an_arrays_children_hashes_expire_with_its_sweep_not_never() -> None:
    client = WriteRecorder()
    jobs = [sweep_job("s1")]
    RunClaims(client, "records", sleep=lambda seconds: None).write_new(  # type: ignore[arg-type]
        [run_of_jobs(jobs)], jobs, {"s1": ["a" * 16] * 4}
    )
    kept = {item["SK"]["S"]: item for _, items in client.calls for item in items}
    assert kept["CHILD_HASHES"]["expires_at"] == kept["SWEEP"]["expires_at"]


def test_a_recoverys_sweep_is_written_with_its_history() -> None:
    client = WriteRecorder()
    Recoveries(client, "records", sleep=lambda seconds: None).write_recovered([sweep_job("s2")])  # type: ignore[arg-type]
    assert client.written("JOB") == [("put_item", "JOB#s2")]
    assert client.written("SWEEP") == [("batch_write_item", "JOB#s2")]


def test_no_function_on_the_records_stream_is_handed_a_sweep_item() -> None:
    streams = [
        event["Properties"]
        for resource in load_template()["Resources"].values()
        for event in resource.get("Properties", {}).get("Events", {}).values()
        if event.get("Type") == "DynamoDB"
    ]
    assert len(streams) >= 2, "the outbox (publish) and recoveries (submit)"
    (item,) = sweep_items([sweep_job("s1")])
    written = {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"Keys": {}, "NewImage": item}}
    for stream in streams:
        assert not matches(written, stream.get("FilterCriteria", {}).get("Filters", [])), "nothing to tell of it"
