"""The submit function as the fault tests (tests/faults.py) drive it: how it is invoked, and its Batch
gateway's back-off waits recorded instead of slept, so a fault that makes it wait costs the test nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from types import ModuleType
from typing import Any, NamedTuple

import pytest

from batchdrop.store.items import RUN_SK, deserialize, run_item
from batchdrop.store.records import RunRecord

Invoke = Callable[[dict[str, Any]], Any]
"""The `submit_function` fixture's handler: an event in, its response out."""


def no_waiting(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The gateway's own back-off waits, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(module.submitter.batch, "sleep", waits.append)
    return waits


class UnsleptSubmit(NamedTuple):
    """The `unslept_submit` fixture: the submit function's module, its handler, and the back-off waits its
    Batch gateway recorded instead of sleeping them."""

    module: ModuleType
    invoke: Invoke
    waits: list[float]


VISIBILITY_TIMEOUT = timedelta(seconds=720)
"""The intake queue's: how long SQS keeps a message the function failed before delivering it again."""


def as_if_redelivered(dynamodb: Any, table: str) -> None:
    """Age every unfinished claim by the intake queue's visibility timeout, as the wait before SQS brings a
    failed message back would: a test that hands the message back at once is then seen as that
    redelivery, not as a second copy delivered while the first is still being handled (`ClaimHeld`)."""
    paginator = dynamodb.get_paginator("scan")
    pages = paginator.paginate(
        TableName=table,
        FilterExpression="SK = :run AND #status = :submitting",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":run": {"S": RUN_SK}, ":submitting": {"S": "submitting"}},
    )
    for item in (item for page in pages for item in page.get("Items", [])):
        claim = RunRecord.model_validate(deserialize(item))
        aged = claim.model_copy(update={"claimed_at": claim.claimed_at - VISIBILITY_TIMEOUT})
        dynamodb.put_item(TableName=table, Item=run_item(aged))
