"""The platform config: its invariants are checked when it loads, wherever it lives."""

from __future__ import annotations

import textwrap
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from batchdrop.errors import ConfigInvalid, ConfigUnavailable
from batchdrop.platform.config import parse_platform_config
from batchdrop.platform.source import PlatformConfigSource, read_config_bytes
from tests.conftest import EXAMPLES

QUEUES = """\
queues:
  cpu:
    arn: arn:aws:batch:us-east-1:123456789012:job-queue/cpu
    hardware: cpu
    max_vcpus: 16
    max_memory_mib: 65536
  gpu:
    arn: arn:aws:batch:us-east-1:123456789012:job-queue/gpu
    hardware: gpu
    max_vcpus: 16
    max_memory_mib: 65536
    max_gpus: 1
    fair_share: true
"""
TEAMS = """\
teams:
  vision:
    share_identifier: vision
    job_definitions: {trainer: "arn:aws:batch:us-east-1:123456789012:job-definition/t:1"}
"""
ROUTES = """\
routes:
  - when: {hardware: gpu}
    queue: gpu
  - when: {hardware: cpu}
    queue: cpu
"""


def config_text(queues: str = QUEUES, teams: str = TEAMS, routes: str = ROUTES) -> bytes:
    return ("version: 1\n" + queues + teams + routes).encode()


def problems(raw: bytes) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigInvalid) as caught:
        parse_platform_config(raw)
    return [(p.path, p.code, p.message) for p in caught.value.problems]


def test_example_config_loads() -> None:
    config = parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())
    assert set(config.queues) == {"cpu-shared", "gpu-shared", "gpu-on-demand", "gpu-vision-prod"}
    assert config.teams["vision"].job_definitions["trainer"].endswith("vision-trainer:3")


def test_route_to_unknown_queue_is_refused() -> None:
    found = problems(config_text(routes="routes:\n  - when: {hardware: gpu}\n    queue: gpus\n"))
    assert ("routes[0].queue", "unknown_queue") in [(p, c) for p, c, _ in found]


def test_gpu_route_naming_cpu_queue_is_refused() -> None:
    found = problems(config_text(routes="routes:\n  - when: {hardware: gpu}\n    queue: cpu\n"))
    assert ("routes[0].queue", "hardware_mismatch", "this route takes gpu jobs but `cpu` is a cpu queue") in found


def test_cpu_route_naming_gpu_queue_is_refused() -> None:
    found = problems(config_text(routes="routes:\n  - when: {hardware: cpu}\n    queue: gpu\n"))
    assert ("routes[0].queue", "hardware_mismatch", "this route takes cpu jobs but `gpu` is a gpu queue") in found


def test_route_without_hardware_is_refused_because_it_would_catch_both_kinds() -> None:
    found = problems(config_text(routes="routes:\n  - when: {team: vision}\n    queue: cpu\n"))
    assert [c for _, c, _ in found] == ["route_without_hardware"]


def test_team_reaching_fair_share_queue_needs_share_identifier() -> None:
    teams = TEAMS.replace("    share_identifier: vision\n", "")
    found = problems(config_text(teams=teams))
    assert ("teams.vision", "missing_share_identifier") in [(p, c) for p, c, _ in found]


def test_gpu_queue_must_offer_gpus_and_cpu_queue_must_not() -> None:
    queues = QUEUES.replace("    max_gpus: 1\n", "").replace(
        "    max_memory_mib: 65536\n  gpu:", "    max_memory_mib: 65536\n    max_gpus: 2\n  gpu:"
    )
    codes = {c for _, c, _ in problems(config_text(queues=queues))}
    assert codes == {"gpu_queue_without_gpus", "cpu_queue_with_gpus"}


def test_route_for_unknown_team_is_refused() -> None:
    routes = ROUTES + "  - when: {team: robotics, hardware: cpu}\n    queue: cpu\n"
    assert ("routes[2].when.team", "unknown_team") in [(p, c) for p, c, _ in problems(config_text(routes=routes))]


def test_config_problems_carry_lines() -> None:
    with pytest.raises(ConfigInvalid) as caught:
        parse_platform_config(config_text().replace(b"max_vcpus: 16", b"max_vcpu: 16", 1))
    problem = next(p for p in caught.value.problems if p.code == "unknown_field")
    assert (problem.path, problem.line) == ("queues.cpu.max_vcpu", 6)
    assert "did you mean `max_vcpus`" in problem.message


def test_reads_config_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_bytes(config_text())
    assert read_config_bytes(str(path)) == config_text()


def test_missing_file_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(ConfigUnavailable, match="cannot read the platform config"):
        read_config_bytes(str(tmp_path / "nope.yaml"))


@mock_aws
def test_reads_config_from_s3_and_ssm() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="platform")
    s3.put_object(Bucket="platform", Key="batchdrop/platform.yaml", Body=config_text())
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/batchdrop/platform", Value=config_text().decode(), Type="String")
    from_s3 = PlatformConfigSource("s3://platform/batchdrop/platform.yaml", s3_client=s3).get()
    from_ssm = PlatformConfigSource("ssm:/batchdrop/platform", ssm_client=ssm).get()
    assert from_s3 == from_ssm
    assert set(from_s3.queues) == {"cpu", "gpu"}


@mock_aws
def test_missing_s3_object_is_unavailable() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="platform")
    with pytest.raises(ConfigUnavailable, match="NoSuchKey"):
        PlatformConfigSource("s3://platform/none.yaml", s3_client=s3).get()


def test_bad_s3_location_is_explained() -> None:
    with pytest.raises(ConfigUnavailable, match="is not s3://bucket/key"):
        read_config_bytes("s3://just-a-bucket")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_config_is_cached_for_the_ttl_then_reread(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_bytes(config_text())
    clock = FakeClock()
    source = PlatformConfigSource(str(path), ttl_seconds=60, clock=clock)
    first = source.get()
    path.write_bytes(config_text().replace(b"max_vcpus: 16", b"max_vcpus: 32", 1))
    clock.now += 30
    assert source.get() is first
    clock.now += 31
    assert source.get().queues["cpu"].max_vcpus == 32


def test_a_broken_edit_keeps_the_last_good_config(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_bytes(config_text())
    clock = FakeClock()
    source = PlatformConfigSource(str(path), ttl_seconds=60, clock=clock)
    good = source.get()
    path.write_bytes(textwrap.dedent("version: 1\nqueues: {}\n").encode())
    clock.now += 61
    assert source.get() is good


def test_a_broken_config_with_no_good_copy_raises(tmp_path: Path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_bytes(b"version: 1\nqueues: {}\n")
    with pytest.raises(ConfigInvalid):
        PlatformConfigSource(str(path)).get()


def test_a_fallback_keeps_its_routes_hardware_and_is_on_demand() -> None:
    raw = (EXAMPLES / "platform.yaml").read_text()
    wrong_hardware = raw.replace("fallback: gpu-on-demand", "fallback: cpu-shared")
    with pytest.raises(ConfigInvalid) as caught:
        parse_platform_config(wrong_hardware.encode())
    assert [(p.code, p.path) for p in caught.value.problems] == [("hardware_mismatch", "routes[1].fallback")]
    on_spot = raw.replace("    capacity: on_demand\n", "    capacity: spot\n", 1)  # gpu-on-demand's
    with pytest.raises(ConfigInvalid) as caught:
        parse_platform_config(on_spot.encode())
    assert [p.code for p in caught.value.problems] == ["fallback_not_on_demand"]


def priced(cpu_price: str, gpu_price: str = "{vcpu_hour: 0.03, gib_hour: 0.004, gpu_hour: 3.06}") -> bytes:
    queues = QUEUES.replace(
        "    max_memory_mib: 65536\n  gpu:", f"    max_memory_mib: 65536\n    price: {cpu_price}\n  gpu:"
    )
    return config_text(queues=queues + f"    price: {gpu_price}\n")


def test_queue_prices_are_read_and_optional() -> None:
    config = parse_platform_config(priced("{vcpu_hour: 0.012, gib_hour: 0.0016}"))
    cpu, gpu = config.queues["cpu"].price, config.queues["gpu"].price
    assert cpu is not None
    assert (cpu.vcpu_hour, cpu.gib_hour, cpu.gpu_hour) == (0.012, 0.0016, 0.0)
    assert gpu is not None
    assert gpu.gpu_hour == 3.06
    assert parse_platform_config(config_text()).queues["cpu"].price is None


def test_the_example_prices_spot_below_on_demand() -> None:
    config = parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())
    spot, on_demand = config.queues["gpu-shared"].price, config.queues["gpu-on-demand"].price
    assert spot is not None
    assert on_demand is not None
    assert spot.gpu_hour < on_demand.gpu_hour
    assert spot.vcpu_hour < on_demand.vcpu_hour
    assert all(queue.price is not None for queue in config.queues.values())


def test_a_bad_price_names_its_queue_and_key() -> None:
    found = problems(priced("{vcpu_hour: -0.5, gb_hour: 0.004, gib_hour: cheap}"))
    assert [(path, code) for path, code, _ in found] == [
        ("queues.cpu.price.vcpu_hour", "out_of_range"),
        ("queues.cpu.price.gib_hour", "wrong_type"),
        ("queues.cpu.price.gb_hour", "unknown_field"),
    ]
    assert "did you mean `gib_hour`" in found[2][2]
    assert "at least 0" in found[0][2]


def test_a_gpu_queue_priced_without_gpu_hours_is_refused() -> None:
    found = problems(priced("{vcpu_hour: 0.012}", gpu_price="{vcpu_hour: 0.03, gib_hour: 0.004}"))
    assert [(path, code) for path, code, _ in found] == [("queues.gpu.price.gpu_hour", "gpu_queue_without_gpu_price")]
