"""AWS Batch, as batchdrop uses it: submit without ever submitting twice, find, describe, cancel, and
read a job definition's command (what a sweep without `command` wraps, docs/sweeps.md).

SubmitJob has no idempotency token. botocore's own retries would resend a
request whose first copy may have created a job, so the Batch client is built
with retries off and this gateway decides: a throttle (the request was
refused, 50 TPS per account) is retried with jittered exponential backoff, and
so is a connection that could not be made (the request never left); an
uncertain outcome is settled by looking the deterministic job name up first:

- Batch answered 500 or 503 (it is done with the request, whatever it did): a job
  that is not listed is submitted again;
- no answer came (a read time-out, a connection lost mid-request) or a gateway
  answered in Batch's place (502, 504): the request may still be on its way and
  make its job after the look-up found none (a read time-out made a burst's one
  duplicate), so a job not listed is not sent again then; the drop is retried
  later (the queue's visibility timeout), and its resumed run adopts the job by
  name or submits it.
Every SubmitJob attempt first waits for its turn within the account's SubmitJob
budget (`submit_rate`), so that a burst of drops is paced below the throttle
instead of thrown at it.
The calls that are safe to repeat (ListJobs, DescribeJobs, TerminateJob) are
retried by the gateway too, on throttles, 5xx and lost connections alike, so one
client configuration (one attempt per call) serves every call: ListJobs and
TerminateJob get one retry (what botocore gave them before), which keeps an
uncertain submit's look-up short, DescribeJobs the gateway's `max_attempts`.
DescribeJobDefinitions is retried like DescribeJobs, and a command it finds is
kept for the life of the process (a revision never changes; the latest revision
of a name is asked again after `definition_ttl` seconds), so a burst of drops
makes one call per job definition. A definition with no command to wrap is
asked again every time: once fixed, the next drop sees it.

Where a queue stands (a job's place at its front, its compute environments' state: what a stuck
job's advice tells) is read-only and best-effort: asked twice at most, kept `queue_ttl` seconds
per queue (many stuck jobs of one queue cost one snapshot), and a failure is a typed error the
caller may shrug off (`BatchUnavailable`, `BatchRefused`).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ProxyConnectionError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from batchdrop.errors import BatchdropError
from batchdrop.gateways.queue_state import EnvironmentState, QueueFront, QueuePlace, environment_state
from batchdrop.gateways.submit_rate import SubmitPacer
from batchdrop.platform.definition_commands import DefinitionCommand, command_of

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

logger = logging.getLogger(__name__)

BATCH_CLIENT_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)
"""The Batch client's settings: one attempt per call, no automatic retry (see the module doc).

`total_max_attempts` counts attempts; botocore's older `max_attempts` counts *retries*
(`max_attempts: 1` is two attempts), which re-sent a SubmitJob whose first copy had made
the job. Set here, it also overrides AWS_MAX_ATTEMPTS and the config file."""
THROTTLE_CODES = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "RequestLimitExceeded", "SlowDown"}
)
MAX_REASON = 250
"""Batch keeps a cancel or terminate reason as the job's status reason; a short one reads well there."""
_NOT_SENT = (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)
"""No connection was made: Batch never received the request, so sending it again is safe."""
_GATEWAY_STATUSES = frozenset({502, 504})
"""A gateway's answer in Batch's place: the service behind it may still be making the job."""
_NO_ANSWER = (BotoConnectionError, HTTPClientError)
"""Every way botocore tells that no answer came. Past `_NOT_SENT`, the request was sent (a read time-out,
a connection lost mid-request: `ReadTimeoutError`, `ConnectionClosedError`) and Batch may still be
making the job."""
_REVISION = re.compile(r":[0-9]+$")
"""A job definition reference that names its revision (`name:3`, `arn:…:job-definition/name:3`)."""
_T = TypeVar("_T")


class BatchRefused(BatchdropError):
    """Batch refused a request for good (4xx): retrying the same request cannot help."""


class BatchUnavailable(BatchdropError):
    """Batch kept throttling or failing; the caller should try again later."""


@dataclass(frozen=True)
class SubmittedJob:
    job_id: str
    job_name: str
    adopted: bool
    """True when the job already existed (an earlier attempt made it) and was adopted, not submitted."""


def is_throttle(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in THROTTLE_CODES or _status(exc) == 429


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _transient(exc: ClientError) -> bool:
    """Batch did not refuse: it throttled, or failed on its side (5xx); the same call may succeed later."""
    return is_throttle(exc) or _status(exc) >= 500


@contextmanager
def _unavailable_as(message: str) -> Iterator[None]:
    """Batch not answering (a throttle or 5xx left after the retries, a lost connection) as
    `BatchUnavailable` with this message; a refusal (4xx) raised as it is."""
    try:
        yield
    except ClientError as exc:
        if not _transient(exc):
            raise
        raise BatchUnavailable(f"{message}: {exc}") from exc
    except _NO_ANSWER as exc:
        raise BatchUnavailable(f"{message}: {exc}") from exc


@contextmanager
def _read_as(message: str) -> Iterator[None]:
    """A read that failed, as a typed error with this message: `BatchUnavailable` when Batch did not
    answer, `BatchRefused` when it refused (a missing permission, an unknown queue)."""
    try:
        with _unavailable_as(message):
            yield
    except ClientError as exc:
        raise BatchRefused(f"{message}: {exc.response.get('Error', {}).get('Message', str(exc))}") from exc


def _refused_read(definition: str, exc: ClientError) -> str:
    """Why Batch refused to describe a job definition, and what to do about it: most often this
    function's role lacks the permission, which no retry can give."""
    error = exc.response.get("Error", {})
    message = f"Batch refused to describe job definition {definition}: {error.get('Message', str(exc))}"
    if "AccessDenied" in str(error.get("Code")) or _status(exc) == 403:
        message += "; the submit function's role needs batch:DescribeJobDefinitions"
    logger.error(message)
    return message


def console_url(region: str, job_id: str) -> str:
    """A job's page in the Batch console."""
    return f"https://{region}.console.aws.amazon.com/batch/home?region={region}#jobs/detail/{job_id}"


class BatchGateway:
    def __init__(
        self,
        client: BatchClient,
        *,
        max_attempts: int = 8,
        base_delay: float = 0.2,
        max_delay: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        definition_ttl: float = 300.0,
        queue_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        submit_rate: SubmitPacer | None = None,
    ) -> None:
        self.client = client
        self.submit_rate = submit_rate
        """Waits for each SubmitJob attempt's turn within the account's SubmitJob budget; None: unpaced."""
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.definition_ttl = definition_ttl
        self.clock = clock
        self._definitions: dict[str, tuple[float | None, DefinitionCommand]] = {}
        """Job definition reference -> (when the answer is stale, None for never; the answer)."""
        self.queue_ttl = queue_ttl
        self._fronts: dict[str, tuple[float, QueueFront]] = {}
        self._environments: dict[str, tuple[float, list[EnvironmentState]]] = {}
        """Queue -> (when the answer is stale; the answer)."""

    def _backoff(self, attempt: int) -> None:
        """Full jitter: a random wait up to base × 2^attempt, capped."""
        self.sleep(random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt)))  # noqa: S311

    def submit(self, request: Mapping[str, Any], *, look_first: bool = False) -> SubmittedJob:
        """Submit a job once. With `look_first` (a resumed run), adopt a job of this name if one exists."""
        name, queue = request["jobName"], request["jobQueue"]
        if look_first and (existing := self._adopted(name, queue)) is not None:
            return existing
        for attempt in range(self.max_attempts):
            if self.submit_rate is not None:
                self.submit_rate.take()  # every attempt is a call against the account's limit
            try:
                response = self.client.submit_job(**request)
            except ClientError as exc:
                if is_throttle(exc):
                    logger.info("SubmitJob throttled; backing off", extra={"job_name": name, "attempt": attempt})
                    self._backoff(attempt)
                    continue
                if _status(exc) in _GATEWAY_STATUSES:
                    return self._settled_or_later(name, queue, attempt, exc)
                if _status(exc) >= 500:
                    found = self._settle_uncertain(name, queue, attempt, exc)
                    if found is not None:
                        return found
                    continue
                message = exc.response.get("Error", {}).get("Message", str(exc))
                raise BatchRefused(f"Batch refused job {name}: {message}") from exc
            except _NOT_SENT as exc:
                logger.info("SubmitJob could not connect; trying again", extra={"job_name": name, "error": str(exc)})
                self._backoff(attempt)
                continue
            except _NO_ANSWER as exc:  # sent, and no answer came
                return self._settled_or_later(name, queue, attempt, exc)
            return SubmittedJob(job_id=response["jobId"], job_name=response["jobName"], adopted=False)
        raise BatchUnavailable(f"Batch did not accept job {name} after {self.max_attempts} attempts")

    def _settled_or_later(self, name: str, queue: str, attempt: int, error: Exception) -> SubmittedJob:
        """After a call Batch may still be applying: its job if listed already, else not sent again now."""
        found = self._settle_uncertain(name, queue, attempt, error)
        if found is not None:
            return found
        raise BatchUnavailable(
            f"SubmitJob of job {name} got no answer from Batch ({error}) and Batch does not list the job yet:"
            " it may still make it, so it is looked up again when the drop is retried"
        ) from error

    def _settle_uncertain(self, name: str, queue: str, attempt: int, error: Exception) -> SubmittedJob | None:
        """After a time-out or 5xx the job may exist: look before submitting again."""
        logger.warning(
            "SubmitJob outcome uncertain; looking the job up by name",
            extra={"job_name": name, "attempt": attempt, "error": str(error)},
        )
        self._backoff(attempt)
        return self._adopted(name, queue)

    def exists(self, name: str, queue: str) -> bool:
        """Whether Batch has a job of this name in `queue` (an earlier attempt's). Raises
        `BatchUnavailable` when it cannot tell."""
        return self._adopted(name, queue) is not None

    def _adopted(self, name: str, queue: str) -> SubmittedJob | None:
        """The job of this name Batch has already (an earlier attempt's), adopted; `BatchUnavailable` when
        Batch cannot tell."""
        with _unavailable_as(f"cannot tell whether job {name} was created"):
            existing = self.find(name, queue)
        return SubmittedJob(job_id=existing, job_name=name, adopted=True) if existing is not None else None

    def find(self, name: str, queue: str) -> str | None:
        """The id of the newest job called `name` in `queue`, in any status, or None."""
        newest: tuple[int, str] | None = None
        token: str | None = None
        while True:
            arguments: dict[str, Any] = {
                "jobQueue": queue,
                "filters": [{"name": "JOB_NAME", "values": [name]}],
            }
            if token:
                arguments["nextToken"] = token
            page = self._repeatable(self.client.list_jobs, attempts=2, **arguments)
            for summary in page.get("jobSummaryList", []):
                # An array's children share its name; their ids are `<parent>:<index>`. Batch lists
                # only parents by queue, the emulator lists both: only a parent is ever the job.
                if summary.get("jobName") == name and ":" not in summary["jobId"]:
                    created = int(summary.get("createdAt", 0))
                    if newest is None or created > newest[0]:
                        newest = (created, summary["jobId"])
            token = page.get("nextToken")
            if not token:
                return newest[1] if newest else None

    def describe(self, job_ids: set[str]) -> dict[str, dict[str, Any]]:
        """What Batch knows of these jobs (its JobDetail), 100 to a call; absent ids it has forgotten."""
        wanted = sorted(job_ids)
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 100):
            response = self._repeatable(self.client.describe_jobs, jobs=wanted[start : start + 100])
            for job in response.get("jobs", []):
                found[job["jobId"]] = dict(job)
        return found

    def terminate(self, job_id: str, reason: str) -> None:
        """Stop a job whatever its state: a running one is killed, a queued one cancelled."""
        self._repeatable(self.client.terminate_job, attempts=2, jobId=job_id, reason=reason[:MAX_REASON])

    def definition_command(self, definition: str) -> DefinitionCommand:
        """A job definition's own command (`containerProperties.command`) and the revision it is of, or
        why it has none to wrap (`command_of` decides; this gateway only describes).

        `definition` is a name or an ARN, with a revision or without (then the latest ACTIVE revision,
        the one SubmitJob would use). A command found is kept: for good under the revision it was read
        from and a reference naming a revision, for `definition_ttl` seconds under a name without one.
        No command is never kept, so a definition fixed since is seen by the next drop. Raises
        `BatchUnavailable` when Batch keeps failing to answer, `BatchRefused` when it refuses.
        """
        now = self.clock()
        cached = self._definitions.get(definition)
        if cached is not None and (cached[0] is None or now < cached[0]):
            return cached[1]
        with _unavailable_as(f"cannot read job definition {definition}"):
            found = command_of(self.job_definition(definition))
        if found.command is not None and found.definition_arn is not None:
            self._definitions[found.definition_arn] = (None, found)
            self._definitions[definition] = (None if _REVISION.search(definition) else now + self.definition_ttl, found)
        return found

    def job_definition(self, definition: str) -> dict[str, Any] | None:
        """The job definition this reference names, as DescribeJobDefinitions tells it, or None. A name
        without revision is its latest ACTIVE revision. A refusal (4xx) is `BatchRefused`."""
        revisions: list[dict[str, Any]] = []
        arguments: dict[str, Any] = (
            {"jobDefinitions": [definition]}
            if _REVISION.search(definition)
            else {"jobDefinitionName": definition.rsplit("/", 1)[-1], "status": "ACTIVE"}
        )
        while True:
            try:
                page = self._repeatable(self.client.describe_job_definitions, **arguments)
            except ClientError as exc:
                if _transient(exc):
                    raise
                raise BatchRefused(_refused_read(definition, exc)) from exc
            revisions += [dict(revision) for revision in page.get("jobDefinitions", [])]
            if not page.get("nextToken"):
                return max(revisions, key=lambda revision: int(revision.get("revision", 0)), default=None)
            arguments["nextToken"] = page["nextToken"]

    def queue_position(self, queue_arn: str, job_id: str) -> QueuePlace:
        """The job's place among the first 100 RUNNABLE jobs of its queue (GetJobQueueSnapshot), or no
        place where Batch did not list it. Raises `BatchUnavailable` or `BatchRefused`."""
        now = self.clock()
        cached = self._fronts.get(queue_arn)
        if cached is None or now >= cached[0]:
            with _read_as(f"cannot read the front of queue {queue_arn}"):
                response = self._repeatable(self.client.get_job_queue_snapshot, attempts=2, jobQueue=queue_arn)
            cached = (now + self.queue_ttl, QueueFront.from_snapshot(response))
            self._fronts[queue_arn] = cached
        return cached[1].place_of(job_id)

    def compute_environments_state(self, queue: str) -> list[EnvironmentState]:
        """The queue's compute environments in its order (DescribeJobQueues, DescribeComputeEnvironments):
        status, state, maximum and desired vCPUs. Raises `BatchUnavailable` or `BatchRefused`."""
        now = self.clock()
        cached = self._environments.get(queue)
        if cached is not None and now < cached[0]:
            return cached[1]
        with _read_as(f"cannot read the compute environments of queue {queue}"):
            queues = self._repeatable(self.client.describe_job_queues, attempts=2, jobQueues=[queue])["jobQueues"]
            order = sorted(
                (entry for described in queues[:1] for entry in described.get("computeEnvironmentOrder", [])),
                key=lambda entry: entry.get("order", 0),
            )
            arns = [entry["computeEnvironment"] for entry in order]
            described = (
                self._repeatable(self.client.describe_compute_environments, attempts=2, computeEnvironments=arns)[
                    "computeEnvironments"
                ]
                if arns
                else []
            )
        by_arn = {each.get("computeEnvironmentArn"): each for each in described}
        states = [environment_state(by_arn[arn]) for arn in arns if arn in by_arn]
        self._environments[queue] = (now + self.queue_ttl, states)
        return states

    def _repeatable(self, call: Callable[..., _T], *, attempts: int | None = None, **arguments: Any) -> _T:
        """A call that may be sent again (a read, or a terminate), made up to `attempts` times (the
        gateway's `max_attempts` by default): retried on throttles, 5xx and lost connections with the
        gateway's back-off; a refusal (4xx) is raised at once."""
        for attempt in range((attempts or self.max_attempts) - 1):
            try:
                return call(**arguments)
            except ClientError as exc:
                if not _transient(exc):
                    raise
            except _NO_ANSWER:
                pass
            self._backoff(attempt)
        return call(**arguments)
