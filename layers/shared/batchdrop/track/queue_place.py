"""Why a job is still RUNNABLE, in words: its place at the front of its queue and the state of the
queue's compute environments. `standing_words` is pure; `QueueStanding` asks Batch for both
(read-only, cached by the gateway) and gives no words, rather than an error, when Batch does not
answer: a stuck report is never held up by them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from batchdrop.errors import BatchdropError
from batchdrop.gateways.batch import BatchGateway
from batchdrop.gateways.queue_state import FRONT_OF_QUEUE, EnvironmentState, QueuePlace

logger = logging.getLogger(__name__)


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 101st."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def standing_words(place: QueuePlace | None, environments: Sequence[EnvironmentState], queue: str) -> str:
    """Where a RUNNABLE job stands, e.g. "12th in gpu-shared; the queue's environment gpu-spot is at its
    maximum of 256 vCPUs: your job starts as others finish". Empty when nothing is known."""
    told = [_environment_words(environment) for environment in environments]
    usable = [index for index, environment in enumerate(environments) if environment.usable]
    if usable and all(environments[index].at_maximum for index in usable):
        told[usable[-1]] += ": your job starts as others finish"  # nothing will grow to make room
    parts = [_place_words(place, queue)] if place is not None else []
    return "; ".join(part for part in [*parts, *told] if part)


def _place_words(place: QueuePlace, queue: str) -> str:
    if place.position == 1:
        return f"1st in {queue}: it is the next to start"
    if place.position is not None:
        return f"{ordinal(place.position)} in {queue}"
    if place.listed >= FRONT_OF_QUEUE:
        return f"not among the first {FRONT_OF_QUEUE} jobs of {queue}"
    return f"not at the front of {queue} just now (Batch lists {place.listed} jobs there)"


def _environment_words(environment: EnvironmentState) -> str:
    name = environment.name
    if environment.status == "INVALID":
        reason = f": {environment.status_reason}" if environment.status_reason else ""
        return f"environment {name} is INVALID{reason} — ask the platform team"
    if environment.state == "DISABLED":
        return f"environment {name} is DISABLED and starts no jobs — ask the platform team"
    if environment.status != "VALID":
        return f"environment {name} is {environment.status}"
    if environment.at_maximum:
        return f"the queue's environment {name} is at its maximum of {environment.max_vcpus} vCPUs"
    if environment.max_vcpus is not None and environment.desired_vcpus is not None:
        return (
            f"environment {name} is scaling up ({environment.desired_vcpus} of at most "
            f"{environment.max_vcpus} vCPUs wanted)"
        )
    return ""


class QueueStanding:
    """Asks Batch where a RUNNABLE job stands, and says it in words (`standing_words`)."""

    def __init__(self, batch: BatchGateway) -> None:
        self.batch = batch

    def words(self, *, queue_arn: str, queue: str, job_id: str) -> str:
        """The job's standing in words; what Batch did not answer is left out (a throttled snapshot
        still lets the environments be told, and the other way round)."""
        place = _asked("queue snapshot", queue_arn, lambda: self.batch.queue_position(queue_arn, job_id))
        environments = _asked(
            "compute environments", queue_arn, lambda: self.batch.compute_environments_state(queue_arn)
        )
        return standing_words(place, environments or [], queue)


def _asked[T](what: str, queue_arn: str, ask: Callable[[], T]) -> T | None:
    """Batch's answer, or None: where a job stands only adds to its stuck report, so nothing that goes
    wrong asking (Batch not answering, refusing, or an answer not understood) may stop the report."""
    try:
        return ask()
    except BatchdropError as exc:
        logger.warning("%s unavailable", what, extra={"queue": queue_arn, "error": str(exc)})
    except Exception:  # a bug here must not cost the job.stuck event
        logger.exception("%s not understood", what, extra={"queue": queue_arn})
    return None
