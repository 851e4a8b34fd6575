"""What a function does when Lambda SnapStart resumes it from a snapshot (the `SnapStart` parameter,
docs/operations.md *SnapStart*).

With SnapStart, one initialized instance is snapshotted and every new instance is a copy of it: whatever
the init phase left in memory is shared by all of them. What batchdrop holds at init, and why each is
safe to copy or is refreshed here:

- `random`'s generator, seeded once when the module was imported: every copy would draw the same
  sequence, so the Batch gateway's full-jitter back-off would have all submit instances retry a
  throttled SubmitJob in step, the herd jitter exists to break; botocore's retries draw their
  jitter from it too (every client, every function). Reseeded after restore.
- boto3 clients: made at init, no call made, so no connection is open in the snapshot. Their
  credentials come from the runtime's credential provider and are refreshed by botocore before
  they expire.
- settings from the environment: the same for every instance of a published version.
- the submit function's SubmitJob pacing: no slot of the shared schedule booked at init; its fallback
  token bucket holds at most one call however far the clock moved while the snapshot waited.
- caches with a time to live (the platform config, Batch's job definitions and queues, Slack's
  webhooks): empty at init, filled on first use, after restore, and timed from then.
- ids: run ids are hashes of the object's identity; a notification claim's id is a `uuid4` made per
  call from the kernel's random source (`os.urandom`), not from a generator seeded at init.
"""

from __future__ import annotations

import random


def reseed_random() -> None:
    """A generator of this instance's own, from the operating system's entropy."""
    random.seed()


def refresh_after_restore() -> None:
    """Register the after-restore hooks. Lambda's Python runtime holds `snapshot_restore_py`; anywhere
    else (tests, the local runtime, a function without SnapStart's hooks library) there is no
    snapshot and nothing to register."""
    try:
        from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]  # noqa: PLC0415
    except ImportError:
        return
    register_after_restore(reseed_random)
