"""DriftWatch: the daily platform check (docs/platform-check.md). The reconcile function runs it once a day
on its own schedule (its five-minute sweep does not): the platform config against the account, as
`batchdrop platform check` compares them; a day they disagree is recorded (`store/drift`), and its record
is told as `platform.drift` downstream of the records table's stream."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Protocol

from batchdrop.platform.config import PlatformConfig
from batchdrop.platform.drift import Account, DriftReport, check_account
from batchdrop.store.records import utc_now


class ConfigReader(Protocol):  # `batchdrop.platform.source.PlatformConfigSource`
    def get(self) -> PlatformConfig: ...


class AccountReader(Protocol):  # `batchdrop.gateways.account.AccountGateway`
    def account_for(self, queue_arns: Sequence[str], definitions: Sequence[str]) -> Account: ...


class DriftRecorder(Protocol):  # `batchdrop.store.drift.DriftLog`
    def record(
        self, *, at: datetime, config: str, errors: int, warnings: int, findings: Sequence[dict[str, str]]
    ) -> bool: ...


class DriftWatch:
    def __init__(
        self,
        *,
        config: ConfigReader,
        location: str,
        account: AccountReader,
        log: DriftRecorder,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.location = location
        self.account = account
        self.log = log
        self.clock = clock

    def check(self) -> tuple[DriftReport, bool]:
        """The config against the account now; and whether a disagreement was recorded (the day's first)."""
        config = self.config.get()
        definitions = [arn for team in config.teams.values() for arn in team.job_definitions.values()]
        report = check_account(config, self.account.account_for([q.arn for q in config.queues.values()], definitions))
        if not report.drifted:
            return report, False
        recorded = self.log.record(
            at=self.clock(),
            config=self.location,
            errors=len(report.errors),
            warnings=len(report.drifted) - len(report.errors),
            findings=[asdict(finding) for finding in report.drifted],
        )
        return report, recorded
