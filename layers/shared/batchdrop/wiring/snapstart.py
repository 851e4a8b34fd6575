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
- pydantic's validators: built before the snapshot (`build_validators`), from the code's own models
  only, so a restored instance's first drop does not build them.
- ids: run ids are hashes of the object's identity; a notification claim's id is a `uuid4` made per
  call from the kernel's random source (`os.urandom`), not from a generator seeded at init.
"""

from __future__ import annotations

import random

from pydantic import BaseModel


def build_validators() -> int:
    """Build now every pydantic model imported so far that deferred its build (`defer_build`): the
    validators and serializers the first invocation would otherwise build (~25 ms of a first drop).
    Only pure computation: no call is made, so nothing in the snapshot depends on the network.
    Returns how many models were built."""
    pending = [model for model in _subclasses(BaseModel) if _ours(model) and not model.__pydantic_complete__]
    for model in pending:
        # Not raised: a model that cannot be built yet is built, or fails, on first use as without SnapStart;
        # an error here would fail the snapshot, and with it the deploy.
        model.model_rebuild(raise_errors=False)
    return sum(model.__pydantic_complete__ for model in pending)


def _subclasses(cls: type[BaseModel]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _ours(model: type[BaseModel]) -> bool:
    # batchdrop's, and the handler module's own (Lambda imports it as a top-level module)
    return model.__module__.startswith("batchdrop.") or model.__module__ in _HANDLER_MODULES


_HANDLER_MODULES = {"app", "__main__"}


def reseed_random() -> None:
    """A generator of this instance's own, from the operating system's entropy."""
    random.seed()


def register_snapshot_hooks() -> None:
    """Register the before-snapshot and after-restore hooks. Lambda's Python runtime holds
    `snapshot_restore_py`; anywhere else (tests, the local runtime, a function without SnapStart)
    there is no snapshot and nothing to register. Without SnapStart the validators are built on first
    use instead: building them at init would cost the same, since an invocation always follows."""
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found]  # noqa: PLC0415
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return
    register_before_snapshot(build_validators)
    register_after_restore(reseed_random)
