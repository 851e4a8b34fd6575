"""What every operator command shares: its error, the deployed stack's resources, and `--since`.

The commands' work against a stack is split by what they do: reading a run's state (`run_views`),
dropping a spec and waiting for its receipt (`uploads`), following a run (`following`), cancelling one
(`cancelling`), and reading its logs (`run_logs`, over `log_streams`). The command line
(`batchdrop_cli.stack`) makes their clients and prints what they return.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from batchdrop.errors import BatchdropError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient


class OperationFailed(BatchdropError):
    """An operator command that cannot be done as asked (the command line exits 2 with the message)."""


@dataclass(frozen=True)
class StackResources:
    """What the commands need from a deployed stack, read from its CloudFormation outputs."""

    bucket: str
    table: str
    config_location: str | None = None
    intake_queue_url: str | None = None
    intake_dead_letters_url: str | None = None
    stage: str | None = None
    """The stack's `Stage` parameter: its functions are `batchdrop-<stage>-<function>` (template.yaml)."""

    @classmethod
    def from_stack(cls, cloudformation: CloudFormationClient, stack_name: str) -> StackResources:
        try:
            stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            raise OperationFailed(
                f"no stack {stack_name!r} here: deploy it (docs/deploy.md), pass --stack NAME or set BATCHDROP_STACK"
            ) from exc
        outputs = {output["OutputKey"]: output.get("OutputValue", "") for output in stacks[0].get("Outputs", [])}
        parameters = {
            parameter["ParameterKey"]: parameter.get("ParameterValue", "")
            for parameter in stacks[0].get("Parameters", [])
        }
        missing = [name for name in ("JobsBucketName", "RecordsTableName") if not outputs.get(name)]
        if missing:
            raise OperationFailed(f"stack {stack_name!r} has no output {', '.join(missing)}: is it a batchdrop stack?")
        return cls(
            bucket=outputs["JobsBucketName"],
            table=outputs["RecordsTableName"],
            config_location=outputs.get("PlatformConfigLocation"),
            intake_queue_url=outputs.get("IntakeQueueUrl") or None,
            intake_dead_letters_url=outputs.get("IntakeDeadLetterQueueUrl") or None,
            stage=parameters.get("Stage") or None,
        )


def parse_since(text: str, now: datetime) -> datetime:
    """`30m`, `12h`, `7d` (ago) or an ISO 8601 date or time (UTC unless it says otherwise)."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if text[-1:] in units and text[:-1].isdigit():
        try:
            return now - timedelta(**{units[text[-1]]: int(text[:-1])})
        except OverflowError as exc:  # before the year 1
            raise OperationFailed(f"--since {text!r}: that is before any run; say 30m, 12h, 7d or a date") from exc
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise OperationFailed(f"--since {text!r}: say 30m, 12h, 7d, or a date such as 2026-11-20") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)
