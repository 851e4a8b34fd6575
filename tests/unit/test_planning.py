"""Routing and planning: each job to the right queue, with the exact SubmitJob request."""

from __future__ import annotations

import re

import pytest

from batchdrop.errors import SpecRejected
from batchdrop.platform.batch_limits import batch_limit_violations
from batchdrop.platform.config import PlatformConfig
from batchdrop.platform.definition_commands import DefinitionCommand, definitions_to_read
from batchdrop.platform.identity import job_name, run_id_for_object
from batchdrop.platform.planning import Plan, check_and_plan, plan_run
from batchdrop.spec import sweep
from batchdrop.spec.parse import parse_spec
from tests.conftest import EXAMPLES, ROOT

RUN_ID = "abcdefghijklmnopqrst"


def plan_of(text: str, team: str, config: PlatformConfig) -> Plan:
    return check_and_plan(text.encode(), "spec.yaml", team=team, config=config, run_id=RUN_ID)


def example(name: str, team: str, config: PlatformConfig) -> Plan:
    path = EXAMPLES / "specs" / name
    return check_and_plan(path.read_bytes(), path.name, team=team, config=config, run_id=RUN_ID)


def test_pipeline_routes_each_step_to_its_hardware(platform_config: PlatformConfig) -> None:
    plan = example("resnet-pipeline.yaml", "vision", platform_config)
    assert [(job.step, job.queue, job.hardware) for job in plan.jobs] == [
        ("prep", "cpu-shared", "cpu"),
        ("train", "gpu-shared", "gpu"),
        ("evaluate", "cpu-shared", "cpu"),
    ]
    train = plan.jobs[1]
    assert train.request["arrayProperties"] == {"size": 4}
    assert train.request["containerOverrides"]["resourceRequirements"] == [
        {"type": "VCPU", "value": "8"},
        {"type": "MEMORY", "value": "61440"},
        {"type": "GPU", "value": "1"},
    ]
    assert train.request["parameters"]["experiment_file"] == "s3://ml-data/experiments/resnet.yaml"


def test_dependencies_are_filled_with_real_job_ids_at_submission(platform_config: PlatformConfig) -> None:
    plan = example("resnet-pipeline.yaml", "vision", platform_config)
    evaluate = plan.jobs[2]
    assert "dependsOn" not in evaluate.request
    assert evaluate.submit_request({"train": "job-2"})["dependsOn"] == [{"jobId": "job-2"}]


def test_production_gpu_goes_to_the_teams_production_queue(platform_config: PlatformConfig) -> None:
    plan = example("vision-production.yaml", "vision", platform_config)
    assert [(job.step, job.queue) for job in plan.jobs] == [("train", "gpu-vision-prod"), ("package", "cpu-shared")]


def test_fair_share_queue_gets_share_identifier_and_priority(platform_config: PlatformConfig) -> None:
    plan = example("triage-experiment.json", "forecasting", platform_config)
    request = plan.jobs[0].request
    assert request["shareIdentifier"] == "forecast"
    assert request["schedulingPriorityOverride"] == 20


def test_fair_share_priority_defaults_to_the_teams(platform_config: PlatformConfig) -> None:
    plan = example("resnet-pipeline.yaml", "vision", platform_config)
    assert {job.request["schedulingPriorityOverride"] for job in plan.jobs} == {50}


def test_queue_without_fair_share_gets_no_share_identifier_and_warns_of_priority(
    platform_config: PlatformConfig,
) -> None:
    text = (EXAMPLES / "specs" / "vision-production.yaml").read_text() + "priority: 5\n"
    plan = plan_of(text, "vision", platform_config)
    production = plan.jobs[0].request
    assert "shareIdentifier" not in production
    assert "schedulingPriorityOverride" not in production
    assert plan.warnings == ["step `train`: `priority` is ignored: queue `gpu-vision-prod` is not fair-share"]


def test_retries_on_spot_reclaims_only(platform_config: PlatformConfig) -> None:
    plan = example("gpu-finetune.yaml", "vision", platform_config)
    assert plan.jobs[0].request["retryStrategy"] == {
        "attempts": 2,  # of its 3, at most `spot_fallback.after` on spot; then the on-demand queue
        "evaluateOnExit": [
            {"onStatusReason": "Host EC2*", "action": "RETRY"},
            {"onReason": "*", "action": "EXIT"},
        ],
    }


def test_plain_retries_have_no_exit_rules(platform_config: PlatformConfig) -> None:
    plan = example("triage-experiment.json", "forecasting", platform_config)
    assert plan.jobs[0].request["retryStrategy"] == {"attempts": 2}
    assert plan.jobs[0].request["timeout"] == {"attemptDurationSeconds": 720 * 60}


def test_jobs_are_tagged_with_team_run_environment_and_the_specs_tags(platform_config: PlatformConfig) -> None:
    request = example("cpu-report.yaml", "forecasting", platform_config).jobs[0].request
    assert request["tags"] == {
        "batchdrop:team": "forecasting",
        "batchdrop:run-id": RUN_ID,
        "batchdrop:environment": "adhoc",
        "batchdrop:step": "main",
        "project": "forecasting-ops",
        "cost_center": "5120",
    }
    assert request["propagateTags"] is True


def test_step_maps_merge_over_top_level_defaults(platform_config: PlatformConfig) -> None:
    text = """\
version: 1
name: merge
job_definition: trainer
env: {A: top, B: top}
resources: {vcpus: 1, memory_mib: 1024}
steps:
  - name: one
    env: {B: step}
  - name: two
    resources: {vcpus: 2, memory_mib: 2048}
"""
    plan = plan_of(text, "vision", platform_config)
    env = {item["name"]: item["value"] for item in plan.jobs[0].request["containerOverrides"]["environment"]}
    assert (env["A"], env["B"]) == ("top", "step")
    assert plan.jobs[1].resources.vcpus == 2


def test_steps_are_submitted_after_what_they_depend_on(platform_config: PlatformConfig) -> None:
    text = """\
version: 1
name: order
job_definition: trainer
resources: {vcpus: 1, memory_mib: 1024}
steps:
  - {name: last, depends_on: [middle]}
  - {name: middle, depends_on: [first]}
  - {name: first}
"""
    assert [job.step for job in plan_of(text, "vision", platform_config).jobs] == ["first", "middle", "last"]


def test_gpu_job_is_refused_when_a_route_would_send_it_to_a_cpu_queue(platform_config: PlatformConfig) -> None:
    # The config check refuses such a route when it loads; routing enforces it again whatever the config says.
    unchecked = PlatformConfig.model_validate(
        {
            **platform_config.model_dump(),
            "routes": [{"when": {"team": "vision"}, "queue": "cpu-shared"}],
        }
    )
    with pytest.raises(SpecRejected) as caught:
        example("gpu-finetune.yaml", "vision", unchecked)
    problem = caught.value.problems[0]
    assert problem.code == "hardware_mismatch"
    assert problem.path == "resources.gpus"
    assert "GPU jobs run only on gpu queues" in problem.message


def test_cpu_job_is_refused_when_a_route_would_send_it_to_a_gpu_queue(platform_config: PlatformConfig) -> None:
    unchecked = PlatformConfig.model_validate(
        {**platform_config.model_dump(), "routes": [{"when": {}, "queue": "gpu-shared"}]}
    )
    with pytest.raises(SpecRejected) as caught:
        example("cpu-report.yaml", "forecasting", unchecked)
    assert "CPU jobs run only on cpu queues" in caught.value.problems[0].message


def test_no_route_for_the_hardware_is_explained(platform_config: PlatformConfig) -> None:
    cpu_only = PlatformConfig.model_validate(
        {**platform_config.model_dump(), "routes": [{"when": {"hardware": "cpu"}, "queue": "cpu-shared"}]}
    )
    with pytest.raises(SpecRejected) as caught:
        example("gpu-finetune.yaml", "vision", cpu_only)
    assert caught.value.problems[0].code == "no_route"
    assert "no queue takes gpu jobs of team `vision`" in caught.value.problems[0].message


def test_routing_problems_carry_the_line_of_the_step(platform_config: PlatformConfig) -> None:
    text = (EXAMPLES / "specs" / "resnet-pipeline.yaml").read_text().replace("gpus: 1}", "gpus: 6}")
    with pytest.raises(SpecRejected) as caught:
        plan_of(text, "vision", platform_config)
    problem = caught.value.problems[0]
    assert problem.path == "steps[1].resources.gpus"
    assert problem.line == text.splitlines().index("    resources: {vcpus: 8, memory_mib: 61440, gpus: 6}") + 1


def test_job_names_are_deterministic_and_within_batchs_rules() -> None:
    name = job_name("x" * 64, "y" * 64, RUN_ID)
    assert len(name) <= 128
    assert name.endswith(RUN_ID)
    assert job_name("-lead", "main", RUN_ID) == f"lead-main-{RUN_ID}"
    assert job_name("resnet", "train", RUN_ID) == job_name("resnet", "train", RUN_ID)


def test_run_id_follows_the_uploaded_object() -> None:
    first = run_id_for_object("bucket", "incoming/vision/a.yaml", version_id="v1")
    assert first == run_id_for_object("bucket", "incoming/vision/a.yaml", version_id="v1")
    assert first != run_id_for_object("bucket", "incoming/vision/a.yaml", version_id="v2")
    unversioned = run_id_for_object("bucket", "incoming/vision/a.yaml", etag="e", sequencer="01")
    assert unversioned != run_id_for_object("bucket", "incoming/vision/a.yaml", etag="e", sequencer="02")
    assert unversioned == run_id_for_object(
        "bucket", "incoming/vision/a.yaml", version_id="null", etag="e", sequencer="01"
    )


def test_limit_check_names_each_violation() -> None:
    request = {
        "jobName": "-bad",
        "tags": {str(i): "v" for i in range(51)},
        "dependsOn": [{"jobId": "x"}] * 21,
        "arrayProperties": {"size": 1},
        "timeout": {"attemptDurationSeconds": 30},
        "schedulingPriorityOverride": 10000,
    }
    violations = batch_limit_violations(request)
    assert len(violations) == 6


SWEEP_WITHOUT_COMMAND = """\
version: 1
name: experiments
job_definition: trainer
resources: {vcpus: 4, memory_mib: 16384, gpus: 1}
parameters: {output_path: s3://ml-data/results}
sweep:
  experiment_file: [s3://ml-data/experiments/a.yaml, s3://ml-data/experiments/b.yaml]
  seed: ["1", "2", "3"]
"""
TRAINER = "arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3"
TRAINER_COMMAND = ("python", "train.py", "--experiment", "Ref::experiment_file", "--out=Ref::output_path/Ref::seed")


def test_a_sweep_without_command_wraps_its_job_definitions_command(platform_config: PlatformConfig) -> None:
    parsed = parse_spec(SWEEP_WITHOUT_COMMAND.encode(), "spec.yaml")
    assert definitions_to_read(parsed, team="vision", config=platform_config) == [TRAINER]
    plan = plan_run(
        parsed,
        team="vision",
        config=platform_config,
        run_id=RUN_ID,
        definition_commands={TRAINER: DefinitionCommand(TRAINER_COMMAND)},
    )
    request = plan.jobs[0].request
    assert request["arrayProperties"] == {"size": 6}
    command = request["containerOverrides"]["command"]
    assert command[:2] == ["sh", "-c"]
    assert command[3:] == [
        sweep.SHELL_NAME,
        "python",
        "train.py",
        "--experiment",
        sweep.marker("experiment_file"),
        f"--out=Ref::output_path/{sweep.marker('seed')}",
    ], "a swept Ref:: is the prelude's to fill per child; a parameter that is not swept is Batch's"
    assert request["parameters"] == {"output_path": "s3://ml-data/results"}
    assert plan.warnings == []


def test_offline_the_plan_wraps_a_placeholder_and_says_so(platform_config: PlatformConfig) -> None:
    plan = plan_of(SWEEP_WITHOUT_COMMAND, "vision", platform_config)
    command = plan.jobs[0].request["containerOverrides"]["command"]
    assert command[3:] == [sweep.SHELL_NAME, "<command of job definition vision-trainer:3>"]
    (warning,) = plan.warnings
    assert "wraps the command of job definition `trainer`" in warning
    assert "reads from Batch when the file is dropped" in warning


@pytest.mark.parametrize(
    "why",
    [
        "has no command (its image's own CMD would run, which batchdrop cannot wrap)",
        "is a multi-node parallel definition, whose commands are set per node",
    ],
)
def test_a_sweep_without_command_is_refused_when_its_definition_has_none_to_wrap(
    platform_config: PlatformConfig, why: str
) -> None:
    with pytest.raises(SpecRejected) as caught:
        check_and_plan(
            SWEEP_WITHOUT_COMMAND.encode(),
            "spec.yaml",
            team="vision",
            config=platform_config,
            run_id=RUN_ID,
            definition_commands={TRAINER: DefinitionCommand(None, why)},
        )
    (problem,) = caught.value.problems
    assert (problem.code, problem.path, problem.line) == ("sweep_definition_command", "sweep", 6)
    assert why in problem.message
    assert "give `command` in the spec" in problem.message


def test_a_sweep_with_its_own_command_needs_no_job_definition_command(platform_config: PlatformConfig) -> None:
    parsed = parse_spec((EXAMPLES / "specs" / "resnet-pipeline.yaml").read_bytes(), "resnet-pipeline.yaml")
    assert definitions_to_read(parsed, team="vision", config=platform_config) == []


def test_a_swept_parameter_fills_the_specs_own_command_per_child(platform_config: PlatformConfig) -> None:
    text = SWEEP_WITHOUT_COMMAND + "command: [python, train.py, --experiment=Ref::experiment_file]\n"
    command = plan_of(text, "vision", platform_config).jobs[0].request["containerOverrides"]["command"]
    assert command[4:] == ["python", "train.py", f"--experiment={sweep.marker('experiment_file')}"]
    assert "SWEEP_EXPERIMENT_FILE" in command[2]


def test_the_specs_of_docs_sweeps_md_plan_as_the_page_says(platform_config: PlatformConfig) -> None:
    page = (ROOT / "docs" / "sweeps.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", page, flags=re.DOTALL)
    plans = [plan_of(block, "vision", platform_config) for block in blocks]
    assert [plan.jobs[0].array_size for plan in plans] == [4, 6, 2]
    without_command = plans[2]
    (warning,) = without_command.warnings
    assert f"warning: {warning}" in page, "the page shows the warning `plan` prints"
    values = sweep.child_values(plans[1].jobs[0].sweep or {}, 4)
    assert values == {"experiment_file": "s3://ml-data/experiments/b.yaml", "seed": "2"}, "the page's child 4"


RECOVERING = """
version: 1
name: detector
job_definition: trainer
command: [python, train.py]
resources: {{vcpus: 8, memory_mib: 16384, gpus: {gpus}}}
retries:
  attempts: 3
  on_spot_interruption: true
  out_of_memory: {{times: 2, grow: 2.0}}
  spot_fallback: {{after: 2}}
"""


def test_a_recovering_job_carries_its_policy_with_its_queue_and_its_routes_fallback(
    platform_config: PlatformConfig,
) -> None:
    job = plan_of(RECOVERING.format(gpus=1), "vision", platform_config).jobs[0]
    assert job.queue == "gpu-shared"
    assert job.recovery is not None
    assert (job.recovery.out_of_memory_times, job.recovery.grow, job.recovery.max_memory_mib) == (2, 2.0, 249856)
    assert (job.recovery.spot_fallback_after, job.recovery.fallback_queue) == (2, "gpu-on-demand")
    assert job.request["retryStrategy"]["attempts"] == 2, "at most `after` attempts on spot"
    assert job.request["retryStrategy"]["evaluateOnExit"][0] == {"onReason": "OutOfMemoryError*", "action": "EXIT"}


def test_spot_fallback_on_a_route_without_a_fallback_is_refused(platform_config: PlatformConfig) -> None:
    with pytest.raises(SpecRejected) as caught:
        plan_of(RECOVERING.format(gpus=0), "vision", platform_config)
    [problem] = caught.value.problems
    assert (problem.code, problem.path) == ("no_fallback_queue", "retries.spot_fallback")


def test_a_wrapped_command_is_submitted_with_the_revision_it_was_read_from(platform_config: PlatformConfig) -> None:
    """Batch runs the latest revision of a name; the command batchdrop read may be an older one's. Naming
    the revision read keeps the command and the definition together."""
    read = f"{TRAINER.rsplit(':', 1)[0]}:7"
    plan = plan_run(
        parse_spec(SWEEP_WITHOUT_COMMAND.encode(), "spec.yaml"),
        team="vision",
        config=platform_config,
        run_id=RUN_ID,
        definition_commands={TRAINER: DefinitionCommand(TRAINER_COMMAND, definition_arn=read)},
    )
    (job,) = plan.jobs
    assert (job.request["jobDefinition"], job.job_definition_arn) == (read, read)
    assert job.request["containerOverrides"]["command"][4:6] == ["python", "train.py"]


def test_a_sweep_whose_definition_was_not_read_is_a_clear_error(platform_config: PlatformConfig) -> None:
    with pytest.raises(ValueError, match="vision-trainer:3 was not read: plan with every one of definitions_to_read"):
        plan_run(
            parse_spec(SWEEP_WITHOUT_COMMAND.encode(), "spec.yaml"),
            team="vision",
            config=platform_config,
            run_id=RUN_ID,
            definition_commands={},
        )


PLAIN_ARRAY = """\
version: 1
name: shards
job_definition: trainer
resources: {vcpus: 4, memory_mib: 16384, gpus: 1}
array_size: 8
"""


def test_every_child_of_a_plain_array_is_told_its_child_index(platform_config: PlatformConfig) -> None:
    """A plain array's command runs in the prelude too, so `BATCHDROP_CHILD_INDEX` names a child the same
    way in the array the spec made and in a job that recovers or reruns some of its children."""
    own = plan_of(PLAIN_ARRAY + "command: [python, shard.py]\n", "vision", platform_config).jobs[0]
    command = own.request["containerOverrides"]["command"]
    assert sweep.is_wrapped(command)
    assert command[4:] == ["python", "shard.py"]
    assert "export BATCHDROP_CHILD_INDEX" in command[2]
    assert "SWEEP_" not in command[2]

    parsed = parse_spec(PLAIN_ARRAY.encode(), "spec.yaml")
    assert definitions_to_read(parsed, team="vision", config=platform_config) == [TRAINER]
    plan = plan_run(
        parsed,
        team="vision",
        config=platform_config,
        run_id=RUN_ID,
        definition_commands={TRAINER: DefinitionCommand(("python", "shard.py"))},
    )
    assert plan.jobs[0].request["containerOverrides"]["command"][4:] == ["python", "shard.py"]
    assert plan.jobs[0].request["arrayProperties"] == {"size": 8}


def test_a_plain_array_whose_definition_has_no_command_is_refused_at_its_array_size(
    platform_config: PlatformConfig,
) -> None:
    with pytest.raises(SpecRejected) as caught:
        check_and_plan(
            PLAIN_ARRAY.encode(),
            "spec.yaml",
            team="vision",
            config=platform_config,
            run_id=RUN_ID,
            definition_commands={TRAINER: DefinitionCommand(None, "has no command")},
        )
    (problem,) = caught.value.problems
    assert (problem.code, problem.path) == ("sweep_definition_command", "array_size")
    assert "is an array without `command`" in problem.message
