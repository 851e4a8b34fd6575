"""An array job's children's states, as kept in their one item beside the parent (`items.Children.states`):
two characters a child, its attempts (base 36) and its status code. Tracking writes them
(`batchdrop.track.arrays`); recovery and resume read which children failed or succeeded. Beside them, a
histogram of the ended children's run times in log-spaced buckets (`items.Children.run_times`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from batchdrop.store.records import TERMINAL

CHILD_CODES = {
    "SUBMITTED": "0",
    "PENDING": "1",
    "RUNNABLE": "2",
    "STARTING": "3",
    "RUNNING": "4",
    "SUCCEEDED": "5",
    "FAILED": "6",
}
FAILED_CODES = {"out_of_memory": "7", "spot_reclaim": "8"}
"""A failed child whose failure batchdrop may recover keeps its kind: a FAILED code of its own, terminal
and above every other (`6` is any other failure, and every failure stored before kinds were kept)."""
CHILD_STATUS = {code: status for status, code in CHILD_CODES.items()} | dict.fromkeys(FAILED_CODES.values(), "FAILED")
"""An array's children are kept in one string, two characters a child: its attempts (base 36) and
its status (by rank), so that a later state sorts higher and 10,000 children are one 20 KB item,
read and written once per batch. `..` is a child not heard of yet."""
FAILURE_OF_CODE = {code: kind for kind, code in FAILED_CODES.items()}
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def failed_children(states: str) -> dict[int, tuple[str, int]]:
    """The failed children of an array's states (as kept, see CHILD_CODES), by index: the kind of their
    failure (`out_of_memory`, `spot_reclaim`, or `other`) and their attempts."""
    failed: dict[int, tuple[str, int]] = {}
    for index in range(len(states) // 2):
        attempts, code = states[2 * index], states[2 * index + 1]
        if CHILD_STATUS.get(code) == "FAILED":
            failed[index] = (FAILURE_OF_CODE.get(code, "other"), BASE36.find(attempts))
    return failed


def children_ended(states: str, size: int) -> int:
    """How many of an array's children its states show ended."""
    return sum(CHILD_STATUS.get(states[2 * index + 1 : 2 * index + 2]) in TERMINAL for index in range(size))


def succeeded_children(states: str) -> list[int]:
    """The indices of the children these states show SUCCEEDED."""
    succeeded = CHILD_CODES["SUCCEEDED"]
    return [index for index in range(len(states) // 2) if states[2 * index + 1] == succeeded]


# ---------------------------------------------------------------------- children's run times

RUN_TIME_BUCKETS = 44
"""Buckets of a children's run-time histogram (`items.Children.run_times`): bucket 0 is under a second,
bucket k ≥ 1 is [2^((k-1)/2), 2^(k/2)) seconds (√2 apart, so a figure read from one is within ±19 %
of the truth), and the last is everything from 2^21 s (24 days, past Batch's longest timeout). Counts
only: 44 numbers at most, whatever the array's size."""


def run_time_bucket(seconds: float) -> int:
    """The bucket a child's run time falls in (see RUN_TIME_BUCKETS)."""
    if seconds < 1:
        return 0
    return min(1 + math.floor(2 * math.log2(seconds)), RUN_TIME_BUCKETS - 1)


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The run times a bucket holds, from (inclusive) and to (exclusive; the last bucket's is infinite)."""
    if bucket <= 0:
        return 0.0, 1.0
    low = 2 ** ((bucket - 1) / 2)
    return low, (math.inf if bucket >= RUN_TIME_BUCKETS - 1 else 2 ** (bucket / 2))


def bucket_middle(bucket: int) -> float:
    """A bucket's run time as one figure: its bounds' geometric mean (half a second for bucket 0, the lower
    bound for the open-ended last)."""
    low, high = bucket_bounds(bucket)
    if bucket <= 0:
        return 0.5
    return low if math.isinf(high) else math.sqrt(low * high)


def run_time_quantile(run_times: Mapping[int, int], fraction: float) -> int | None:
    """The bucket holding the run time below which `fraction` of the counted children ran (0.5: the
    median); None when none is counted."""
    total = sum(run_times.values())
    if total <= 0:
        return None
    wanted = max(1, math.ceil(fraction * total))
    seen = 0
    for bucket in sorted(run_times):
        seen += run_times[bucket]
        if seen >= wanted:
            return bucket
    return max(run_times)
