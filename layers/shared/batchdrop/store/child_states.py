"""An array job's children's states, as kept in their one item beside the parent (`items.Children.states`):
two characters a child, its attempts (base 36) and its status code. Tracking writes them
(`batchdrop.track.arrays`); recovery and resume read which children failed or succeeded."""

from __future__ import annotations

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
