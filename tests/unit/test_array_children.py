"""An array's children, two characters each: a failed child keeps why it failed (out of memory, reclaimed),
its code still terminal and above every other, and children stored before kinds were kept still read."""

from __future__ import annotations

from batchdrop.store.child_states import CHILD_CODES, CHILD_STATUS, FAILED_CODES, children_ended, failed_children


def test_failures_of_each_kind_are_terminal_failures_ranked_above_every_other_status() -> None:
    for code in FAILED_CODES.values():
        assert CHILD_STATUS[code] == "FAILED"
        assert all(code > other for other in CHILD_CODES.values())


def test_the_failed_children_with_why_and_their_attempts() -> None:
    states = "15" + "17" + "26" + "38" + "14" + ".."
    assert failed_children(states) == {1: ("out_of_memory", 1), 2: ("other", 2), 3: ("spot_reclaim", 3)}
    assert children_ended(states, 6) == 4, "running and not heard of are not ended"


def test_children_stored_before_kinds_were_kept_read_as_failures_of_no_known_kind() -> None:
    assert failed_children("1516") == {1: ("other", 1)}
