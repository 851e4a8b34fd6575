"""A batch of Batch events as tracking receives it, and what becomes of each message: the types
every part of tracking shares."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from batchdrop.store.costs import MonthStanding
from batchdrop.track.batch_events import BatchEvent, JobDetail

logger = logging.getLogger(__name__)

OWNED_TAG = "batchdrop:run-id"


@dataclass(frozen=True)
class Delivery:
    message_id: str
    event: BatchEvent


class TryAgainSoon(Exception):  # control flow: the message is retried soon (early retry), no alarm
    """The event is right but early: what it needs is not written yet."""


class NotYetRecorded(TryAgainSoon):
    """The job is batchdrop's (its tags say so) but its record is not written yet."""


@dataclass
class TrackResult:
    failed: set[str] = field(default_factory=set)
    """Message ids to return to the queue."""
    unrecorded: set[str] = field(default_factory=set)
    """Of those, events that came early (a job's record, or a failed array's children's ends, not written
    yet: `TryAgainSoon`): worth retrying soon."""
    counts: Counter[str] = field(default_factory=Counter)
    ended: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """Jobs that reached SUCCEEDED or FAILED, by (team, queue, status): the dashboard's outcomes."""
    costs: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    """US dollars added to each team's month (`track.costs`): the dashboard's cost per team."""
    months: dict[str, MonthStanding] = field(default_factory=dict)
    """Each team's month so far and its budget, as read after its newest count this month (`track.costs`):
    the dashboard's month against the budget."""


@contextmanager
def returned_on_failure(result: TrackResult, group: list[Delivery]) -> Iterator[None]:
    """One job's work: if it fails, its messages go back to the queue, and the batch goes on."""
    try:
        yield
    except TryAgainSoon as early:
        result.counts[type(early).__name__] += len(group)
        result.failed.update(delivery.message_id for delivery in group)
        result.unrecorded.update(delivery.message_id for delivery in group)
    except Exception:
        logger.exception("tracking failed", extra={"messages": [delivery.message_id for delivery in group]})
        result.failed.update(delivery.message_id for delivery in group)


def not_ours(detail: JobDetail, events: int, result: TrackResult) -> None:
    if OWNED_TAG in detail.tags:
        raise NotYetRecorded(detail.jobId)
    result.counts["ForeignEvents"] += events
    logger.info("ignoring an event of a job batchdrop did not submit", extra={"job_id": detail.jobId})
