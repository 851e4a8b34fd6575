"""A burst of drops while Batch throttles SubmitJob (HTTP 429 beneath botocore, tests/faults.py): every drop
is submitted once, none is handed back to the queue (so none can reach its dead-letter queue), and the
SubmitJob calls took their slots on the shared schedule (issue 17; `bench.burst` measures the rates)."""

from __future__ import annotations

from collections import Counter

from batchdrop.store.submit_slots import SLOTS_KEY
from tests.faults import FaultProxy
from tests.integration.conftest import LocalStack
from tests.integration.submitting import UnsleptSubmit
from tests.integration.test_submit import example, run_of

DROPS = 20


def test_a_throttled_burst_submits_every_drop_once_and_hands_none_back(
    faults: FaultProxy,
    local_stack: LocalStack,
    unslept_submit: UnsleptSubmit,
) -> None:
    module, submit, waits = unslept_submit
    refused = [faults.throttle("batch", "SubmitJob", nth=nth) for nth in range(1, 2 * DROPS, 2)]  # every other
    uploads = [
        local_stack.upload(f"incoming/forecasting/burst/{index:02d}.yaml", example("cpu-report.yaml"))
        for index in range(DROPS)
    ]

    responses = [submit(local_stack.s3_event(*uploads[start : start + 10])) for start in range(0, DROPS, 10)]

    assert responses == [{"batchItemFailures": []}] * 2, "no drop handed back: nothing for the dead-letter queue"
    assert sum(rule.fired for rule in refused) == DROPS
    assert len(waits) == DROPS, "each throttle backed off once"
    assert faults.count("batch", "SubmitJob") == 2 * DROPS, "a throttled call sent again, and nothing else re-sent"
    names = Counter(job["jobName"] for job in local_stack.batch_jobs())
    assert len(names) == DROPS
    assert set(names.values()) == {1}, "one Batch job per drop, no name twice"
    assert all(run_of(local_stack, upload, module).status == "submitted" for upload in uploads)
    bookings = [seen for seen in faults.requests if seen.operation == "UpdateItem" and b"RATE#SubmitJob" in seen.body]
    assert 2 * DROPS / 3 <= len(bookings) <= 2 * DROPS, "every SubmitJob attempt took a slot, booked 3 at a time"
    slots = local_stack.client("dynamodb").get_item(TableName=local_stack.table, Key=SLOTS_KEY)["Item"]
    assert slots["kind"] == {"S": "submit_slots"}
