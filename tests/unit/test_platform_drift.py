"""The platform config against the account (platform/drift, gateways/account, `batchdrop platform`), in
memory: the account as `gateways/account` reads it, built by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batchdrop.events.contract import PLATFORM_TEAM, PlatformDrift
from batchdrop.gateways.account import AccountGateway, AccountUnreadable, instance_filters
from batchdrop.platform.config import PlatformConfig, QueueConfig, parse_platform_config
from batchdrop.platform.drift import (
    Account,
    ComputeEnvironment,
    DriftReport,
    InstanceType,
    JobDefinition,
    JobQueue,
    check_account,
    usable_memory_mib,
)
from batchdrop.publish.teller import RecordChange
from batchdrop.track.platform_drift import DriftWatch
from batchdrop_cli import platform_check
from batchdrop_cli.main import main
from tests.unit.test_telling import FakePublisher, teller

M6I_24XL = InstanceType("m6i.24xlarge", 96, 393216, 0)
G5_12XL = InstanceType("g5.12xlarge", 48, 196608, 4)
G5_16XL = InstanceType("g5.16xlarge", 64, 262144, 1)
P4D_24XL = InstanceType("p4d.24xlarge", 96, 1179648, 8)
INSTANCES = {
    "cpu-shared": (M6I_24XL,),
    "gpu-shared": (G5_12XL, G5_16XL),
    "gpu-on-demand": (G5_12XL, G5_16XL),
    "gpu-vision-prod": (P4D_24XL,),
}


def _environment(name: str, declared: QueueConfig, **changes: Any) -> ComputeEnvironment:
    fields: dict[str, Any] = {
        "arn": f"arn:aws:batch:us-east-1:123456789012:compute-environment/{name}",
        "name": name,
        "state": "ENABLED",
        "status": "VALID",
        "kind": "SPOT" if declared.capacity == "spot" else "EC2",
        "max_vcpus": int(declared.max_vcpus),
        "instance_types": INSTANCES.get(name, (M6I_24XL,)),
    }
    return ComputeEnvironment(**{**fields, **changes})


def _queue(name: str, declared: QueueConfig, *environments: ComputeEnvironment, **changes: Any) -> JobQueue:
    fields: dict[str, Any] = {
        "arn": declared.arn,
        "name": name,
        "state": "ENABLED",
        "status": "VALID",
        "scheduling_policy_arn": f"arn:aws:batch:us-east-1:123456789012:scheduling-policy/{name}"
        if declared.fair_share
        else None,
        "environments": environments or (_environment(name, declared),),
    }
    return JobQueue(**{**fields, **changes})


def _account(config: PlatformConfig, **queues: JobQueue) -> Account:
    """The account as the example config says it is, but for these queues."""
    built = {declared.arn: _queue(name, declared) for name, declared in config.queues.items()}
    for name, queue in queues.items():
        built[config.queues[name].arn] = queue
    definitions = {
        arn: JobDefinition(
            arn,
            arn.rsplit("/", 1)[1].split(":")[0],
            int(arn.rsplit(":", 1)[1]),
            "ACTIVE",
            # the definitions a team lists as multi-node are (a config without the list has none)
            "multinode" if alias in getattr(team, "multinode_job_definitions", ()) else "container",
        )
        for team in config.teams.values()
        for alias, arn in team.job_definitions.items()
    }
    return Account(queues=built, definitions=definitions)


def _errors(report: DriftReport) -> list[tuple[str, str]]:
    return [(finding.name, finding.check) for finding in report.errors]


def test_the_example_config_agrees_with_an_account_of_its_instances(platform_config: PlatformConfig) -> None:
    report = check_account(platform_config, _account(platform_config))
    assert report.drifted == []
    assert {finding.name for finding in report.findings} == {
        "cpu-shared",
        "gpu-shared",
        "gpu-on-demand",
        "gpu-vision-prod",
        "vision/trainer",
        "vision/ddp",
        "forecasting/triage",
    }


def test_usable_memory_is_the_installed_less_the_kernels_share_and_the_agents_reserve() -> None:
    assert usable_memory_mib(8192) == 8192 - 205 - 32, "an m4.large registers about 7,985 MiB, less 32 MiB"
    assert usable_memory_mib(393216) == 383353


def test_a_gpu_queue_whose_memory_is_more_than_its_instances_have_is_an_error(platform_config: PlatformConfig) -> None:
    queues = dict(platform_config.queues)
    queues["gpu-shared"] = queues["gpu-shared"].model_copy(update={"max_memory_mib": 262144})
    config = platform_config.model_copy(update={"queues": queues})
    report = check_account(config, _account(config))
    assert _errors(report) == [("gpu-shared", "max_memory_mib")]
    assert "config 262,144, largest instance 255,558: too high" in report.errors[0].detail


def test_maxima_below_the_instances_are_warnings_not_errors(platform_config: PlatformConfig) -> None:
    queues = dict(platform_config.queues)
    queues["cpu-shared"] = queues["cpu-shared"].model_copy(update={"max_vcpus": 48, "max_memory_mib": 196608})
    report = check_account(platform_config.model_copy(update={"queues": queues}), _account(platform_config))
    assert report.errors == []
    assert [(finding.check, finding.severity) for finding in report.drifted] == [
        ("max_vcpus", "warning"),
        ("max_memory_mib", "warning"),
    ]


def test_a_cpu_queue_that_launches_gpu_instances_is_an_error(platform_config: PlatformConfig) -> None:
    declared = platform_config.queues["cpu-shared"]
    leaking = _queue("cpu-shared", declared, _environment("cpu-shared", declared, instance_types=(M6I_24XL, G5_12XL)))
    report = check_account(platform_config, _account(platform_config, **{"cpu-shared": leaking}))
    assert ("cpu-shared", "hardware") in _errors(report)


def test_a_gpu_queue_without_gpu_instances_is_an_error(platform_config: PlatformConfig) -> None:
    declared = platform_config.queues["gpu-shared"]
    cpu_only = _queue("gpu-shared", declared, _environment("gpu-shared", declared, instance_types=(M6I_24XL,)))
    report = check_account(platform_config, _account(platform_config, **{"gpu-shared": cpu_only}))
    assert ("gpu-shared", "hardware") in _errors(report)
    assert ("gpu-shared", "max_gpus") in _errors(report)


def test_a_missing_or_disabled_queue_is_an_error(platform_config: PlatformConfig) -> None:
    account = _account(platform_config)
    queues = {arn: queue for arn, queue in account.queues.items() if not arn.endswith("/gpu-shared")}
    declared = platform_config.queues["cpu-shared"]
    queues[declared.arn] = _queue("cpu-shared", declared, state="DISABLED")
    report = check_account(platform_config, Account(queues=queues, definitions=account.definitions))
    assert _errors(report) == [("cpu-shared", "exists"), ("gpu-shared", "exists")]


def test_fair_share_must_agree_with_the_queues_scheduling_policy(platform_config: PlatformConfig) -> None:
    shared, prod = platform_config.queues["gpu-shared"], platform_config.queues["gpu-vision-prod"]
    account = _account(
        platform_config,
        **{
            "gpu-shared": _queue("gpu-shared", shared, scheduling_policy_arn=None),
            "gpu-vision-prod": _queue("gpu-vision-prod", prod, scheduling_policy_arn="arn:policy"),
        },
    )
    assert _errors(check_account(platform_config, account)) == [
        ("gpu-shared", "fair_share"),
        ("gpu-vision-prod", "fair_share"),
    ]


def test_capacity_must_agree_with_the_environments_and_a_mix_is_a_warning(platform_config: PlatformConfig) -> None:
    spot, on_demand = platform_config.queues["gpu-shared"], platform_config.queues["gpu-on-demand"]
    account = _account(
        platform_config,
        **{
            "gpu-shared": _queue("gpu-shared", spot, _environment("gpu-shared", spot, kind="EC2")),
            "gpu-on-demand": _queue(
                "gpu-on-demand",
                on_demand,
                _environment("gpu-on-demand", on_demand),
                _environment("gpu-on-demand", on_demand, kind="SPOT"),
            ),
        },
    )
    report = check_account(platform_config, account)
    assert _errors(report) == [("gpu-shared", "capacity")]
    assert [(finding.name, finding.check) for finding in report.drifted if finding.severity == "warning"] == [
        ("gpu-on-demand", "capacity")
    ]


def test_a_missing_or_inactive_job_definition_is_an_error(platform_config: PlatformConfig) -> None:
    account = _account(platform_config)
    definitions = dict(account.definitions)
    trainer = platform_config.teams["vision"].job_definitions["trainer"]
    triage = platform_config.teams["forecasting"].job_definitions["triage"]
    del definitions[trainer]
    definitions[triage] = JobDefinition(triage, "triage-cli-experiment", 7, "INACTIVE", "container")
    report = check_account(platform_config, Account(queues=account.queues, definitions=definitions))
    assert _errors(report) == [("vision/trainer", "exists"), ("forecasting/triage", "exists")]
    assert "no job definition" in report.errors[0].detail


def test_a_definition_must_fit_every_queue_its_team_can_be_routed_to(platform_config: PlatformConfig) -> None:
    account = _account(platform_config)
    trainer = platform_config.teams["vision"].job_definitions["trainer"]
    triage = platform_config.teams["forecasting"].job_definitions["triage"]
    definitions = {
        **account.definitions,
        trainer: JobDefinition(trainer, "vision-trainer", 3, "ACTIVE", "multinode"),
        triage: JobDefinition(triage, "triage-cli-experiment", 7, "ACTIVE", "container", ("FARGATE",)),
    }
    report = check_account(platform_config, Account(queues=account.queues, definitions=definitions))
    misfits = [finding for finding in report.errors if finding.check == "fits queues"]
    assert [finding.name for finding in misfits] == ["forecasting/triage"], "vision reaches on-demand queues"
    assert "FARGATE definition" in misfits[0].detail


def test_a_multinode_definition_needs_an_on_demand_queue_among_those_its_team_reaches(
    platform_config: PlatformConfig,
) -> None:
    on_demand = platform_config.queues["gpu-on-demand"]
    account = _account(
        platform_config,
        **{"gpu-on-demand": _queue("gpu-on-demand", on_demand, _environment("gpu-on-demand", on_demand, kind="SPOT"))},
    )
    triage = platform_config.teams["forecasting"].job_definitions["triage"]
    definitions = {
        **account.definitions,
        triage: JobDefinition(triage, "triage-cli-experiment", 7, "ACTIVE", "multinode"),
    }
    report = check_account(platform_config, Account(queues=account.queues, definitions=definitions))
    (misfit,) = [finding for finding in report.errors if finding.check == "fits queues"]
    assert misfit.name == "forecasting/triage"
    assert "(multi-node jobs run on EC2 on-demand only)" in misfit.detail


def test_a_fargate_environment_offers_the_largest_fargate_task(platform_config: PlatformConfig) -> None:
    cpu = platform_config.queues["cpu-shared"]
    fargate = _queue("cpu-shared", cpu, _environment("cpu-shared", cpu, kind="FARGATE_SPOT", instance_types=()))
    report = check_account(platform_config, _account(platform_config, **{"cpu-shared": fargate}))
    details = {finding.check: finding.detail for finding in report.errors if finding.name == "cpu-shared"}
    assert details["max_vcpus"].startswith("config 96, largest instance 16: too high")
    assert details["max_memory_mib"].startswith("config 383,353, largest instance 122,880: too high")


def test_instance_names_become_sizes_and_family_filters() -> None:
    assert instance_filters(["g5.12xlarge", "p3", "optimal"]) == (
        ["g5.12xlarge"],
        ["c6i.*", "c7i.*", "m6i.*", "p3.*", "r6i.*"],
    )


class _Refusing:
    def describe_job_queues(self, **_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "DescribeJobQueues")


def test_a_refused_read_is_a_typed_error_naming_the_call() -> None:
    with pytest.raises(AccountUnreadable, match=r"batch:DescribeJobQueues failed: AccessDeniedException"):
        AccountGateway(_Refusing(), None).job_queues(["arn:q"])  # type: ignore[arg-type]


def test_a_generated_config_loads_and_says_each_queues_maxima(platform_config: PlatformConfig) -> None:
    account = _account(platform_config)
    definitions = list(account.definitions.values())
    text = platform_check.generated_config(list(account.queues.values()), definitions)
    generated = parse_platform_config(text.encode())
    assert check_account(generated, account).drifted == []
    assert generated.queues["gpu-vision-prod"].model_dump(include={"max_vcpus", "max_memory_mib", "max_gpus"}) == {
        "max_vcpus": 96,
        "max_memory_mib": 1150124,
        "max_gpus": 8,
    }
    assert generated.queues["cpu-shared"].hardware == "cpu"
    assert generated.queues["cpu-shared"].capacity == "spot"


class _Gateway:
    def __init__(self, account: Account) -> None:
        self.account = account

    def account_for(self, *_: Any) -> Account:
        return self.account


def test_check_prints_a_table_per_queue_and_definition_and_exits_1_on_an_error(
    platform_config: PlatformConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(platform_check, "_account", lambda _args: _Gateway(_account(platform_config)))
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["platform", "check", "--config", "examples/platform.yaml"]) == 0
    out = capsys.readouterr().out
    assert "queue gpu-shared\n  ok       exists" in out
    assert out.rstrip().endswith("examples/platform.yaml: the config and the account agree")

    queues = dict(platform_config.queues)
    queues["gpu-shared"] = queues["gpu-shared"].model_copy(update={"max_memory_mib": 262144})
    monkeypatch.setattr(
        platform_check, "parse_platform_config", lambda *_: platform_config.model_copy(update={"queues": queues})
    )
    assert main(["platform", "check", "--config", "examples/platform.yaml", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert (document["ok"], document["errors"], document["warnings"]) == (False, 1, 0)


def test_check_of_a_config_file_that_is_not_there_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["platform", "check", "--config", "no/such/platform.yaml"]) == 2
    assert "batchdrop: cannot read no/such/platform.yaml" in capsys.readouterr().err


class _Config:
    def __init__(self, config: PlatformConfig) -> None:
        self.config = config

    def get(self) -> PlatformConfig:
        return self.config


class _Log:
    def __init__(self) -> None:
        self.days: dict[str, dict[str, Any]] = {}

    def record(self, *, at: datetime, **kept: Any) -> bool:
        day = at.date().isoformat()
        if day in self.days:
            return False
        self.days[day] = kept
        return True


def test_the_daily_check_records_a_day_the_config_and_the_account_disagree_once(
    platform_config: PlatformConfig,
) -> None:
    queues = dict(platform_config.queues)
    queues["gpu-shared"] = queues["gpu-shared"].model_copy(update={"max_memory_mib": 262144})
    log, now = _Log(), [datetime(2026, 11, 30, 3, 0, tzinfo=UTC)]
    watch = DriftWatch(
        config=_Config(platform_config.model_copy(update={"queues": queues})),
        location="s3://jobs/config/platform.yaml",
        account=_Gateway(_account(platform_config)),
        log=log,
        clock=lambda: now[0],
    )
    report, recorded = watch.check()
    assert (len(report.errors), recorded) == (1, True)
    assert log.days["2026-11-30"]["errors"] == 1
    assert log.days["2026-11-30"]["findings"][0]["check"] == "max_memory_mib"
    assert watch.check()[1] is False, "the same day's second check tells nothing more"
    now[0] += timedelta(days=1)
    assert watch.check()[1] is True


def test_the_daily_check_records_nothing_when_they_agree(platform_config: PlatformConfig) -> None:
    log = _Log()
    watch = DriftWatch(
        config=_Config(platform_config), location="x", account=_Gateway(_account(platform_config)), log=log
    )
    assert watch.check()[1] is False
    assert log.days == {}


def _drift_item(findings: int) -> dict[str, Any]:
    finding = {"subject": "queue", "name": "gpu-shared", "check": "max_memory_mib", "severity": "warning"}
    return {
        "kind": "platform_drift",
        "day": "2026-11-30",
        "checked_at": "2026-11-30T03:00:00.000Z",
        "config": "s3://jobs/config/platform.yaml",
        "errors": 0,
        "warnings": findings,
        "findings": [{**finding, "detail": f"finding {number} " + "x" * 2000} for number in range(findings)],
        "finding_count": findings,
    }


def test_a_days_drift_is_told_once_when_recorded_as_platform_drift_within_its_size() -> None:
    publisher = FakePublisher()
    item = _drift_item(100)
    teller(publisher).tell([RecordChange("1", None, item), RecordChange("2", item, {**item, "expires_at": 1})])
    (event,) = publisher.published
    assert isinstance(event, PlatformDrift)
    assert (event.team, event.status, event.day, event.warning_count, event.finding_count) == (
        PLATFORM_TEAM,
        "warning",
        "2026-11-30",
        100,
        100,
    )
    assert event.attributes()["type"] == "platform.drift"
    assert event.truncated, "200 KB of findings are halved until the event fits SNS"
    assert 0 < len(event.findings) < 100
