"""What `batchdrop submit` decides before it uploads, and what it says when the stack does not answer.

Before: a file the stack would not turn into the run its uploader means (an extension it does not
read, a file over its size limit, no team) is refused without uploading it. The rules are the
stack's own, asked of the layer (`submit.intake.misplaced_problems`, `gateways.bucket.locate_drop`,
`spec.documents`), so the command and the stack cannot disagree.

After: when no receipt comes in time, what to check, named by the stack's real resources (not the
file's place or extension: `drop_problems` has checked those).
"""

from __future__ import annotations

from batchdrop.errors import Problem, cut
from batchdrop.gateways.bucket import INCOMING, locate_drop
from batchdrop.spec.documents import size_problem
from batchdrop.submit.intake import misplaced_problems
from batchdrop_cli.operations import StackResources
from batchdrop_cli.uploads import Upload

NO_TEAM = Problem(path="team", code="no_team", message="no team: say `team:` in the spec or pass --team")
TEAM_PLACEHOLDER = "TEAM"
"""Stands in for a team not known yet, so that the key's other rules can still be asked of the stack."""


def drop_problems(raw: bytes, team: str | None, relative_path: str) -> list[Problem]:
    """Why the stack would not make the run meant of these bytes dropped at `incoming/<team>/<relative
    path>`; none if it would (the spec itself is the stack's to judge: its receipt says)."""
    problems = [] if team else [NO_TEAM]
    key = f"{INCOMING}{team or TEAM_PLACEHOLDER}/{relative_path}"
    location = locate_drop(key)
    if location is None:  # a key ending in "/": S3 makes a folder of it, and a folder is never a run
        problems.append(
            Problem(path="", code="folder", message=f"`{cut(relative_path)}` ends in `/`: name the file (--as PATH)")
        )
    elif team and location.team != team:  # `--team a/b`: the stack would read team `a`
        problems.append(
            Problem(
                path="team",
                code="team_folder",
                message=f"`{cut(team)}` is not a team name (it holds `/`): the stack would run the file as "
                f"team `{cut(location.team)}`",
            )
        )
    problems += misplaced_problems(key)
    size = size_problem(len(raw))
    return [*problems, size] if size else problems


def function_log_group(resources: StackResources, function: str) -> str:
    """The log group of one of the stack's functions (template.yaml: `batchdrop-<stage>-<function>`)."""
    return f"/aws/lambda/batchdrop-{resources.stage or '<stage>'}-{function}"


def no_receipt_advice(upload: Upload, resources: StackResources, *, waited: float) -> str:
    """What to check when the stack has not answered an upload, and how to look later."""
    source = upload.source.uri
    run = (
        f"run {upload.run_id}"
        if upload.source.version_id
        else "its run (the bucket is not versioned: the run id is the stack's to give)"
    )
    intake = resources.intake_queue_url or "the stack's intake queue (output IntakeQueueUrl)"
    dead_letters = resources.intake_dead_letters_url or "the intake dead-letter queue (output IntakeDeadLetterQueueUrl)"
    receipt = f"s3://{resources.bucket}/{upload.location.receipt_key}"
    return "\n".join(
        [
            f"no receipt for {source} after {waited:.0f} s: the stack has not decided {run} (yet).",
            "Check:",
            f"  - the bucket's event notification sends incoming/ to the intake queue "
            f"(aws s3api get-bucket-notification-configuration --bucket {resources.bucket})",
            f"  - the intake queue: {intake} (messages piling up there: the submit function is not receiving them)",
            f"  - the intake dead-letter queue: {dead_letters} (a message there: the upload failed five times)",
            f"  - the submit function's logs: {function_log_group(resources, 'submit')} (search for "
            f"{upload.run_id if upload.source.version_id else upload.source.key}); the receipt is written by "
            f"the publish function: {function_log_group(resources, 'publish')}",
            "Look later:",
            f"  batchdrop status {upload.run_id}" if upload.source.version_id else f"  aws s3 cp {receipt} -",
            f"  batchdrop list --team {upload.location.team}",
            f"  the receipt will be at {receipt}",
        ]
    )
