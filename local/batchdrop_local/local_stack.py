"""The whole stack in the emulator: the Batch side the platform config names, every resource of
`template.yaml`, and the platform config where the functions read it.
"""

from __future__ import annotations

from pathlib import Path

from batchdrop.platform.config import parse_platform_config
from batchdrop_local.batch_fleet import job_definition_arns, provision_batch, queue_arns
from batchdrop_local.emulator import EmbeddedAws, deploy
from batchdrop_local.stack_model import Stack

EXAMPLE_PLATFORM = Path(__file__).resolve().parents[2] / "examples" / "platform.yaml"


def create_stack(aws: EmbeddedAws, platform_config: Path = EXAMPLE_PLATFORM) -> Stack:
    """A fresh emulator holding the stack; the platform config is uploaded where the template says."""
    aws.reset()
    raw = platform_config.read_bytes()
    config = parse_platform_config(raw)
    provision_batch(aws, config)
    stack = deploy(
        aws, {"BatchJobQueueArns": queue_arns(config), "BatchJobDefinitionArns": job_definition_arns(config)}
    )
    location = next(iter(stack.functions.values())).environment["BATCHDROP_PLATFORM_CONFIG"]
    if location.startswith("ssm:"):
        aws.client("ssm").put_parameter(Name=location[4:], Value=raw.decode(), Type="String", Overwrite=True)
    else:
        bucket, _, key = location.removeprefix("s3://").partition("/")
        aws.client("s3").put_object(Bucket=bucket, Key=key, Body=raw)
    return stack
