"""Where the platform config lives: a file, `s3://bucket/key` or `ssm:/parameter/name`.

One environment variable (`BATCHDROP_PLATFORM_CONFIG`) names the location. A
function reads it at most once per `ttl_seconds`, so an edit by the platform
team takes effect within a minute without a redeploy, and a brief S3 or SSM
outage is ridden out on the last good copy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from batchdrop.errors import ConfigInvalid, ConfigUnavailable
from batchdrop.platform.config import PlatformConfig, parse_platform_config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

logger = logging.getLogger(__name__)

CONFIG_ENV_VAR = "BATCHDROP_PLATFORM_CONFIG"
DEFAULT_TTL_SECONDS = 60.0
MAX_CONFIG_BYTES = 1024 * 1024


def read_config_bytes(
    location: str, *, s3_client: S3Client | None = None, ssm_client: SSMClient | None = None
) -> bytes:
    """The raw bytes of the config at `location`; `ConfigUnavailable` if they cannot be read."""
    try:
        if location.startswith("s3://"):
            bucket, _, key = location[len("s3://") :].partition("/")
            if not bucket or not key:
                raise ConfigUnavailable(f"{location!r} is not s3://bucket/key")
            client = s3_client or _client("s3")
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            data: bytes = body.read(MAX_CONFIG_BYTES + 1)
        elif location.startswith("ssm:"):
            name = location[len("ssm:") :]
            client_ssm = ssm_client or _client("ssm")
            value = client_ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
            data = value.encode("utf-8")
        else:
            with Path(location).open("rb") as handle:
                data = handle.read(MAX_CONFIG_BYTES + 1)
    except ConfigUnavailable:
        raise
    except Exception as exc:  # botocore and OS errors alike: the config is not there to read
        raise ConfigUnavailable(f"cannot read the platform config at {location}: {exc}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigUnavailable(f"the platform config at {location} is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    return data


def _client(service: str) -> Any:
    import boto3  # noqa: PLC0415  # only without an injected client: the domain needs no boto3 otherwise

    return boto3.client(service)  # type: ignore[call-overload]


def config_name(location: str) -> str:
    """A file name for the location, so the format is known (SSM values are YAML)."""
    return location.rsplit("/", 1)[-1] if not location.startswith("ssm:") else "parameter.yaml"


class ConfigSource(Protocol):
    """What the services need of a platform config source: the current config (`PlatformConfigSource`,
    or a fixed one in tests)."""

    def get(self) -> PlatformConfig: ...


class PlatformConfigSource:
    """The platform config at one location, re-read at most every `ttl_seconds`."""

    def __init__(
        self,
        location: str,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        s3_client: S3Client | None = None,
        ssm_client: SSMClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self.ttl_seconds = ttl_seconds
        self._s3_client = s3_client
        self._ssm_client = ssm_client
        self._clock = clock
        self._config: PlatformConfig | None = None
        self._loaded_at = 0.0

    def get(self) -> PlatformConfig:
        """The current config. A failed refresh keeps the last good one; with none, it raises."""
        now = self._clock()
        if self._config is not None and now - self._loaded_at < self.ttl_seconds:
            return self._config
        try:
            raw = read_config_bytes(self.location, s3_client=self._s3_client, ssm_client=self._ssm_client)
            config = parse_platform_config(raw, config_name(self.location))
        except (ConfigUnavailable, ConfigInvalid) as exc:
            if self._config is None:
                raise
            logger.warning(
                "platform config refresh failed; keeping the last good copy",
                extra={"location": self.location, "error": str(exc)},
            )
            self._loaded_at = now  # retry after another TTL, not on every record
            return self._config
        self._config, self._loaded_at = config, now
        return config
