"""`batchdrop platform check` and `generate` on the local stack, over HTTP with real boto3 clients: the
emulator's Batch (queues, compute environments, scheduling policies, job definitions) and EC2 (instance
types) as the example's platform team made them (`batchdrop_local.batch_fleet`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from batchdrop_local import bridges
from batchdrop_local.batch_fleet import provision_batch
from batchdrop_local.stack_model import STACK_NAME

from batchdrop.platform.config import parse_platform_config
from batchdrop_cli.main import main
from tests.conftest import EXAMPLES
from tests.faults import FaultProxy
from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.integration

EXAMPLE = (EXAMPLES / "platform.yaml").read_text()
LEAK_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/cpu-leak"


def _check(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, dict[str, list[str]]]:
    """The exit code, and each subject's findings that are not ok: `{"queue gpu-shared": ["ERROR max_…"]}`."""
    code = main(["platform", "check", "--json", *arguments])
    document = json.loads(capsys.readouterr().out)
    drifted: dict[str, list[str]] = {}
    for finding in document["findings"]:
        if finding["severity"] != "ok":
            drifted.setdefault(f"{finding['subject']} {finding['name']}", []).append(
                f"{finding['severity']} {finding['check']}"
            )
    return code, drifted


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    return str(path)


def test_the_stacks_own_config_passes_against_the_local_account(
    local_stack: LocalStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    bridges.stand_in_stack_outputs(local_stack.aws, STACK_NAME, local_stack.stack.outputs)
    assert main(["platform", "check", "--stack", STACK_NAME]) == 0
    out = capsys.readouterr().out
    assert "queue gpu-shared\n  ok       exists          ENABLED, VALID" in out
    assert "  ok       max_memory_mib  config 249,856, largest instance 255,558" in out
    assert "job definition vision/trainer\n  ok       exists          vision-trainer:3 ACTIVE" in out
    assert out.rstrip().endswith(": the config and the account agree")


def test_a_gpu_queue_whose_memory_is_more_than_its_instances_have_is_found(
    local_stack: LocalStack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _config(tmp_path, EXAMPLE.replace("max_memory_mib: 249856", "max_memory_mib: 262144", 1))
    assert _check(capsys, "--config", config) == (1, {"queue gpu-shared": ["error max_memory_mib"]})


def test_a_cpu_queue_whose_environment_launches_gpu_instances_is_found(
    local_stack: LocalStack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    example = parse_platform_config(EXAMPLE.encode())
    leak = example.queues["cpu-shared"].model_copy(update={"arn": LEAK_ARN, "fair_share": False})
    provision_batch(
        local_stack.aws,
        example.model_copy(update={"queues": {"cpu-leak": leak}, "teams": {}}),
        {"cpu-leak": ["m6i.24xlarge", "g5.12xlarge"]},
    )
    queue = f"""  cpu-leak:
    arn: {LEAK_ARN}
    hardware: cpu
    max_vcpus: 96
    max_memory_mib: 383353
    capacity: spot
"""
    config = _config(tmp_path, EXAMPLE.replace("queues:\n", "queues:\n" + queue, 1))
    assert _check(capsys, "--config", config) == (1, {"queue cpu-leak": ["error hardware"]})


def test_a_missing_job_definition_is_found(
    local_stack: LocalStack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _config(tmp_path, EXAMPLE.replace("job-definition/triage-cli-experiment:7", "job-definition/triage:1"))
    assert _check(capsys, "--config", config) == (1, {"job definition forecasting/triage": ["error exists"]})


def test_a_generated_config_has_the_accounts_queues_and_passes(
    local_stack: LocalStack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    written = tmp_path / "generated.yaml"
    assert main(["platform", "generate", "--output", str(written)]) == 0
    generated = parse_platform_config(written.read_bytes())
    example = parse_platform_config(EXAMPLE.encode())
    assert {name: queue.arn for name, queue in generated.queues.items()} == {
        name: queue.arn for name, queue in example.queues.items()
    }
    assert generated.queues["gpu-vision-prod"].max_memory_mib == example.queues["gpu-vision-prod"].max_memory_mib
    capsys.readouterr()
    assert _check(capsys, "--config", str(written)) == (0, {})


def test_throttled_instance_types_are_asked_again_below_botocore_and_the_check_passes(
    faults: FaultProxy, local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    faults.throttle("ec2", "DescribeInstanceTypes", times=2)
    assert _check(capsys, "--config", str(EXAMPLES / "platform.yaml")) == (0, {})
    assert faults.count("ec2", "DescribeInstanceTypes", fault="throttle") == 2


def test_a_refused_describe_is_said_in_words_with_exit_2(
    faults: FaultProxy, local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    faults.fail_before("batch", "DescribeJobQueues", status=403, code="AccessDeniedException", times=None)
    assert main(["platform", "check", "--config", str(EXAMPLES / "platform.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("batchdrop: cannot read the account: batch:DescribeJobQueues failed: AccessDeniedException")
    assert "Traceback" not in err
