"""How fast one submit instance may call SubmitJob: its share of the account's SubmitJob budget.

AWS Batch accepts about 50 SubmitJob calls a second per account, shared with everything else in
it. batchdrop may use `SubmitJobsPerSecond` of them (a template parameter, 40 by default: 10 are
left to the account's other users), and at most `SubmitMaxConcurrency` submit instances run at
once (the intake's event source caps them), so each instance paces its own calls to
budget / instances. Paced, a burst of drops goes through at the budget with almost no throttles,
instead of every instance sending as fast as it can, being refused, and backing off on its own:
docs/operations.md (*Capacity*) has the figures of both.

A token bucket, not a fixed gap: an instance that was idle may make one call at once. The clock
and the sleep are injected (a test's fake clock sees every wait). One Lambda instance handles one
event at a time, so nothing here is shared between threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable


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
        self._tokens = min(self.burst, self._tokens + (now - self._counted_at) * self.per_second)
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
