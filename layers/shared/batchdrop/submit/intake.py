"""What a drop's S3 notification and key alone say, before its object is read: whether it made a run at
all (`is_object_creation`), and whether its key is one batchdrop reads (`misplaced_problems`). The
operator CLI asks the same rules before it uploads (`batchdrop submit`)."""

from __future__ import annotations

from batchdrop.errors import Problem, cut
from batchdrop.gateways.bucket import NO_TEAM, locate_drop
from batchdrop.spec.documents import format_for

OBJECT_CREATED = "ObjectCreated:"
"""The prefix of every S3 event name that creates an object (Put, Post, Copy, CompleteMultipartUpload)."""


def is_object_creation(event_name: str) -> bool:
    """Whether an S3 notification's `eventName` is an upload, the only event that makes a run. A
    delete, a delete marker, a restore, a tagging or ACL change, S3's test event: never a run (a
    delete used to become a second, rejected run whose receipt replaced the live run's)."""
    return event_name.removeprefix("s3:").startswith(OBJECT_CREATED)


def misplaced_problems(key: str) -> list[Problem]:
    """What the key alone says is wrong with a dropped file: no team folder (`incoming/<name>`), or an
    extension batchdrop does not read (`.yaml`, `.yml` and `.json` are read in any case: `RUN.YAML` too). The
    bucket notifies every object under `incoming/` (template.yaml), so such a file is rejected with a
    receipt, not left unanswered."""
    name = key.rsplit("/", 1)[-1]
    problems = []
    location = locate_drop(key)
    if location is not None and not location.in_team_folder:
        problems.append(
            Problem(
                path="",
                code="no_team",
                message=f"`{cut(name)}` is directly under incoming/: a spec file goes in its team's folder, "
                f"incoming/<team>/{cut(name)} (this receipt is under receipts/{NO_TEAM}/)",
            )
        )
    if format_for(name) is None:
        problems.append(
            Problem(
                path="",
                code="file_type",
                message=f"batchdrop reads only files ending in .yaml, .yml or .json (in any case); "
                f"`{cut(name)}` is not one: rename it",
            )
        )
    return problems
