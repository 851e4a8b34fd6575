"""Each function's settings, read from its environment once, at cold start, and checked.

The template sets these variables (`template.yaml`, each function's
`Environment`); a missing or malformed one stops the function at start with
a message that names it, instead of failing on the first record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from batchdrop.errors import BatchdropError

_SNS_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$"


class SettingsInvalid(BatchdropError):
    """The function's environment is missing or has a malformed variable."""


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class SubmitSettings(_Settings):
    table_name: str = Field(alias="TABLE_NAME", min_length=3, max_length=255)
    events_topic_arn: str = Field(alias="EVENTS_TOPIC_ARN", pattern=_SNS_ARN)
    platform_config: str = Field(alias="BATCHDROP_PLATFORM_CONFIG", min_length=1)
    config_ttl_seconds: float = Field(default=60.0, alias="PLATFORM_CONFIG_TTL_SECONDS", gt=0)
    retention_days: int = Field(default=90, alias="RECORD_RETENTION_DAYS", ge=1)
    stale_claim_seconds: int = Field(default=960, alias="STALE_CLAIM_SECONDS", ge=60)
    """Longer than the function's timeout: a claim this old belongs to an invocation that is gone."""


def load_settings[SettingsT: _Settings](model: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
    try:
        return model.model_validate(dict(os.environ if environ is None else environ))
    except ValidationError as exc:
        names = {str(detail["loc"][0]): detail["msg"] for detail in exc.errors(include_url=False) if detail["loc"]}
        described = "; ".join(f"{name}: {message}" for name, message in names.items())
        raise SettingsInvalid(f"{model.__name__} cannot start: {described}") from exc
