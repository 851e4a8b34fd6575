"""A step's content hash: the same for the same step in any run, changed by what decides its outcome, and
by any change upstream of it (docs/resume.md)."""

from __future__ import annotations

from batchdrop.platform.config import PlatformConfig
from batchdrop.platform.planning import check_and_plan
from tests.conftest import EXAMPLES

PIPELINE = (EXAMPLES / "specs" / "resnet-pipeline.yaml").read_text()


def hashes(config: PlatformConfig, text: str = PIPELINE, run_id: str = "run1") -> dict[str, str]:
    plan = check_and_plan(text.encode(), "pipeline.yaml", team="vision", config=config, run_id=run_id)
    return {job.step: job.content_hash for job in plan.jobs}


def test_the_same_spec_in_another_run_has_the_same_hashes(platform_config: PlatformConfig) -> None:
    first, second = hashes(platform_config, run_id="aaaa"), hashes(platform_config, run_id="bbbb")
    assert first == second
    assert len(set(first.values())) == 3
    assert all(len(value) == 64 for value in first.values())


def test_changing_the_last_step_changes_only_its_hash(platform_config: PlatformConfig) -> None:
    before = hashes(platform_config)
    after = hashes(platform_config, PIPELINE.replace("evaluate.py", "evaluate_v2.py"))
    assert [step for step in before if before[step] != after[step]] == ["evaluate"]


def test_changing_a_step_changes_it_and_every_step_after_it(platform_config: PlatformConfig) -> None:
    before = hashes(platform_config)
    after = hashes(platform_config, PIPELINE.replace("train.py]", "train.py, --epochs, '5']"))
    assert [step for step in before if before[step] != after[step]] == ["train", "evaluate"]


def test_resources_parameters_environment_and_sweep_points_change_the_hash(platform_config: PlatformConfig) -> None:
    before = hashes(platform_config)
    changes = [
        PIPELINE.replace("vcpus: 2, memory_mib: 8192", "vcpus: 2, memory_mib: 16384"),
        PIPELINE.replace("results/resnet", "results/resnet2"),
        PIPELINE.replace("resources: {vcpus: 2,", "env: {SEED: '1'}\n    resources: {vcpus: 2,"),
        PIPELINE.replace('"32", "64"', '"32", "128"'),
    ]
    for changed in changes:
        assert hashes(platform_config, changed)["evaluate"] != before["evaluate"]


def test_comments_and_key_order_do_not_change_the_hash(platform_config: PlatformConfig) -> None:
    reordered = PIPELINE.replace(
        "    command: [python, evaluate.py]\n    resources: {vcpus: 2, memory_mib: 8192}",
        "    # scores the models\n    resources: {memory_mib: 8192, vcpus: 2}\n    command: [python, evaluate.py]",
    )
    assert hashes(platform_config, reordered) == hashes(platform_config)
