"""How fast the submit instances call SubmitJob: within the account's SubmitJob budget, together.

AWS Batch accepts about 50 SubmitJob calls a second per account, shared with everything else in
it. batchdrop may use `SubmitJobsPerSecond` of them (a template parameter, 40 by default: the rest
is left to the account's other users). Every SubmitJob attempt first takes its turn:

- `SharedSubmitRate` (what the submit function uses): every instance books its calls on one
  schedule in the records table (`store/submit_slots`), so the calls of all instances together
  keep to the budget, and an instance with work uses the share of one that has none. One
  DynamoDB write per three calls. When the schedule cannot be booked, the instance paces itself
  to its fixed share instead (below) and does not try to book again for `UNBOOKABLE_PAUSE`, so a
  DynamoDB outage costs one booking's retries, then slows submissions and does not fail them.
- `SubmitRate`: one instance's own token bucket, at budget / `SubmitMaxConcurrency` (at most that
  many instances run at once). Simple and free, but a share an idle instance leaves is lost: the
  tail of a burst, when fewer instances have work, goes slower.

Paced, a burst goes through at the budget with almost no throttles, instead of every instance
sending as fast as it can, being refused and backing off on its own (docs/operations.md,
*Capacity*, has the figures of all three). The clock and the sleep are injected (a test's fake
clock sees every wait). One Lambda instance handles one event at a time: nothing here is shared
between threads.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from batchdrop.store.submit_slots import SlotsUnavailable, SubmitSlots

logger = logging.getLogger(__name__)

BOOKED_AT_ONCE = 3
"""Slots an instance books with one write: a third of the writes, and at most two late calls on top."""
LATE_GRACE = 1.0
"""How late a booked slot may still be used (seconds). However late, an instance holds at most
`BOOKED_AT_ONCE - 1` unused slots, so what comes on top of the rate stays bounded; a short grace only
loses slots to a slow read or plan."""
CLOCK_MARGIN = 10.0
"""How far beyond the instances' own bookings the schedule may stand (seconds). The schedule runs
ahead by at most one booking per instance (`at_once` slots each: 15 slots, under half a second, at the
defaults); on top of that, a margin for hosts' clocks apart and slow bookings. Beyond the two
together (the horizon), the schedule is started again at now (`store/submit_slots`), and a slot is
not waited for: the instance paces itself to its own share instead."""
UNBOOKABLE_PAUSE = 30.0
"""After the schedule could not be booked, how long an instance paces itself to its own share
before it tries to book again (seconds): the failed booking cost botocore's retries (up to ~30 s of
DynamoDB back-off), which every call would pay again while DynamoDB fails."""


class SubmitPacer(Protocol):
    def take(self) -> float:
        """Wait until a SubmitJob call may be made; the seconds waited."""
        ...


class SubmitRate:
    """A token bucket of `per_second` tokens a second holding at most `burst`; `take` waits for one."""

    def __init__(
        self,
        per_second: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError(f"a SubmitJob rate must be positive, not {per_second}")
        self.per_second = per_second
        self.burst = max(1.0, burst)
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.burst
        self._counted_at = clock()
        self.waited = 0.0
        """Seconds spent waiting for tokens, in all (what pacing cost this instance)."""

    def take(self) -> float:
        """Wait until a call fits the rate, and count it; the seconds waited."""
        now = self.clock()
        elapsed = max(0.0, now - self._counted_at)  # a clock that went back (a restored snapshot) owes nothing
        self._tokens = min(self.burst, self._tokens + elapsed * self.per_second)
        self._counted_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        wait = (1.0 - self._tokens) / self.per_second
        self.sleep(wait)
        self._tokens = 0.0  # the token that came in while waiting is this call's
        self._counted_at = now + wait
        self.waited += wait
        return wait


class SharedSubmitRate:
    """The budget of every instance at once: an instance books `at_once` consecutive slots of one shared
    schedule (one write for several calls) and makes each call in its slot, waiting for it if need be;
    if the schedule cannot be booked, this instance's own share (`SubmitRate`) paces it.

    A call may use its slot up to `grace` seconds late (the instance was busy reading and planning
    the drop): the schedule still counts it, so over any stretch the calls are at most the slots,
    and at any moment at most `at_once - 1` late calls per instance come on top of the rate (the
    part of Batch's limit left to others absorbs them). A slot older than that is let go."""

    def __init__(
        self,
        slots: SubmitSlots,
        per_second: float,
        instances: int,
        *,
        at_once: int = BOOKED_AT_ONCE,
        grace: float = LATE_GRACE,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError(f"a SubmitJob rate must be positive, not {per_second}")
        self.slots = slots
        self.slot_seconds = 1.0 / per_second
        self.at_once = max(1, at_once)
        self.grace = grace
        self.clock = clock  # wall-clock time: the schedule is shared by instances on other hosts
        self.sleep = sleep
        self.own_share = SubmitRate(per_second / max(1, instances), clock=clock, sleep=sleep)
        self.horizon = self.at_once * max(1, instances) * self.slot_seconds + CLOCK_MARGIN
        """How far ahead a slot may be booked: every instance's booking, and the margin."""
        self.waited = 0.0
        self.bookings = 0
        self.own_share_calls = 0
        """Calls paced by the own share instead: the schedule could not be booked, or stood too far ahead."""
        self._unbookable_until = float("-inf")
        self._booked: deque[float] = deque()
        """The starts of this instance's slots not yet used, earliest first."""

    def take(self) -> float:
        now = self.clock()
        while self._booked and self._booked[0] < now - self.grace:
            self._booked.popleft()  # gone by unused
        if not self._booked:
            if now < self._unbookable_until:
                return self._own_share()
            try:
                start = self.slots.book(self.slot_seconds * self.at_once, now, self.horizon)
            except SlotsUnavailable as exc:
                logger.warning(
                    "SubmitJob schedule unavailable; pacing to this instance's share",
                    extra={"error": str(exc), "pause_seconds": UNBOOKABLE_PAUSE},
                )
                self._unbookable_until = self.clock() + UNBOOKABLE_PAUSE
                return self._own_share()
            self.bookings += 1
            self._booked.extend(start + index * self.slot_seconds for index in range(self.at_once))
        wait = self._booked.popleft() - self.clock()
        if wait > self.horizon:
            logger.warning("SubmitJob schedule far ahead; pacing to this instance's share", extra={"ahead": wait})
            self._booked.clear()
            return self._own_share()
        if wait <= 0:
            return 0.0
        self.sleep(wait)
        self.waited += wait
        return wait

    def _own_share(self) -> float:
        self.own_share_calls += 1
        return self.own_share.take()
