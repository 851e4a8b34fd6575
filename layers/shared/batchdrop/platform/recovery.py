"""Recovery: the new job batchdrop submits when Batch's own retries cannot help (docs/recovery.md).

Batch retries within one job, with the same resources on the same queue. A job that ran out of
memory needs more memory, and one reclaimed again and again on spot capacity needs on-demand
capacity: both need a **new job**. Planning gives each job its `RecoveryPolicy` (from its spec's
`retries` and its route); when the job fails, tracking asks `decide` whether a recovery is due and
records the answer; the submit function (the only one that may call SubmitJob) submits
`recovered_request` under `recovery_job_name`. All of it is pure: no AWS, no clock.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from batchdrop.platform.config import QueueConfig
from batchdrop.platform.identity import job_name
from batchdrop.spec.model import Retries
from batchdrop.spec.sweep import CHILD_INDICES_VARIABLE, compact_indices, expand_indices, is_wrapped, wrap_command
from batchdrop.units import gib


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


class RecoveryPolicy(_Frozen):
    """What a job's spec allows batchdrop to resubmit, with the numbers of its route it needs."""

    out_of_memory_times: int = 0
    grow: float = 2.0
    max_memory_mib: int
    """Memory of the largest instance of the job's queue: growth stops there."""
    attempts: int = 1
    """Batch's attempts the spec asked for, in all."""
    spot_fallback_after: int | None = None
    fallback_queue: str | None = None
    fallback_queue_arn: str | None = None
    fallback_max_memory_mib: int | None = None


class RecoveryCounts(_Frozen):
    """Recoveries made along a step's chain of jobs, and the spot reclaims its jobs suffered."""

    out_of_memory: int = 0
    spot_fallback: int = 0
    spot_reclaims: int = 0


Kind = Literal["out_of_memory", "spot_fallback"]


class RecoveryDue(_Frozen):
    """Tracking's decision that a failed job is to be replaced: what the new job asks for, and where."""

    number: int
    """The step's recovery number: 1 for its first new job."""
    kind: Kind
    memory_mib: int
    queue: str
    queue_arn: str
    attempts: int
    counts: RecoveryCounts
    """The chain's counts, this recovery included: the new job's record starts from them."""
    words: str
    """In plain words, with its numbers: 'ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)'."""
    children: str | None = None
    """For an array job: the original indices of the children to run again, in compact ranges
    (`3,7,10-14`); the new job is an array of just those, or a single job for one."""
    reclaimed: int = 0
    """For an array's out-of-memory recovery: how many of `children` were reclaimed on spot rather than out
    of memory (they run again with the others, so none is left behind)."""
    left: str | None = None
    """For an array job: the original indices of its failed children that are not run again (they failed
    otherwise: their program's own failure), in compact ranges. Their failure is final: the step's end
    says so, and its run fails (docs/recovery.md, *Edge cases*)."""


class Decision(_Frozen):
    due: RecoveryDue | None = None
    final: str | None = None
    """Why a failure the spec asked to recover is final, in numbers; None when it was not asked."""


def decide(
    policy: RecoveryPolicy | None,
    *,
    failure_class: str | None,
    memory_mib: int,
    queue: str,
    queue_arn: str,
    counts: RecoveryCounts,
    reclaims: int,
) -> Decision:
    """Whether a job that failed with `failure_class` on `queue`, asking `memory_mib`, after `reclaims`
    spot reclaims of its own attempts, is to be replaced (its chain made `counts` recoveries before)."""
    if policy is None:
        return Decision()
    number = counts.out_of_memory + counts.spot_fallback + 1
    if failure_class == "out_of_memory" and policy.out_of_memory_times:
        return _more_memory(
            policy, memory_mib=memory_mib, queue=queue, queue_arn=queue_arn, counts=counts, number=number
        )
    reclaimed = counts.spot_reclaims + reclaims
    after = policy.spot_fallback_after
    if (
        failure_class == "spot_reclaim"
        and after is not None
        and policy.fallback_queue is not None
        and policy.fallback_queue_arn is not None
        and queue != policy.fallback_queue
    ):
        if reclaimed < after:
            return Decision()
        left = max(1, policy.attempts - reclaimed)
        return Decision(
            due=RecoveryDue(
                number=number,
                kind="spot_fallback",
                memory_mib=memory_mib,
                queue=policy.fallback_queue,
                queue_arn=policy.fallback_queue_arn,
                attempts=left,
                counts=counts.model_copy(
                    update={"spot_fallback": counts.spot_fallback + 1, "spot_reclaims": reclaimed}
                ),
                words=f"reclaimed {reclaimed} times on spot queue `{queue}`; resubmitted on on-demand queue "
                f"`{policy.fallback_queue}`",
            )
        )
    return Decision()


def decide_children(
    policy: RecoveryPolicy | None,
    *,
    failed: Mapping[int, tuple[str, int]],
    size: int,
    memory_mib: int,
    queue: str,
    queue_arn: str,
    counts: RecoveryCounts,
) -> Decision:
    """Whether an array job whose children `failed` (original index -> (failure kind, attempts)) is to be
    replaced by a new job of just its failed children. Those out of memory are run again with more memory,
    and those reclaimed with them (one new job has one memory and one queue: none is left behind); without
    any out of memory, the reclaimed ones alone, as `decide` says for a reclaimed job. A child that failed
    any other way (its program's own failure) is not run again: the decision names it (`left`), and its
    failure is final."""
    if policy is None:
        return Decision()
    out_of_memory = sorted(index for index, (kind, _) in failed.items() if kind == "out_of_memory")
    reclaimed = sorted(index for index, (kind, _) in failed.items() if kind == "spot_reclaim")
    if not out_of_memory and not reclaimed:
        return Decision()
    others = sorted(index for index, (kind, _) in failed.items() if kind not in {"out_of_memory", "spot_reclaim"})
    which = sorted(out_of_memory or reclaimed)
    decision = decide(
        policy,
        failure_class="out_of_memory" if out_of_memory else "spot_reclaim",
        memory_mib=memory_mib,
        queue=queue,
        queue_arn=queue_arn,
        counts=counts,
        reclaims=0 if out_of_memory else min(failed[index][1] for index in reclaimed),
    )
    head = f"{len(which):,} of {size:,} children"
    riders = len(reclaimed) if out_of_memory else 0
    if decision.due is not None:
        words = f"{head} {decision.due.words}"
        if riders:
            words += f"; the {plural_children(riders)} reclaimed on spot run again with them"
        again = sorted(out_of_memory + reclaimed) if out_of_memory else reclaimed
        left = compact_indices(others) if others else None
        due = decision.due.model_copy(
            update={"children": compact_indices(again), "words": words, "reclaimed": riders, "left": left}
        )
        return Decision(due=due)
    if decision.final is not None:
        also = f"; nor the {plural_children(riders)} reclaimed on spot" if riders else ""
        return Decision(final=f"{head} {decision.final}{also}")
    return Decision()


def plural_children(count: int) -> str:
    return f"{count:,} child" if count == 1 else f"{count:,} children"


def _more_memory(
    policy: RecoveryPolicy, *, memory_mib: int, queue: str, queue_arn: str, counts: RecoveryCounts, number: int
) -> Decision:
    done, times = counts.out_of_memory, policy.out_of_memory_times
    limit = policy.max_memory_mib
    if queue == policy.fallback_queue and policy.fallback_max_memory_mib:  # it fell back: that queue's largest
        limit = policy.fallback_max_memory_mib
    if done >= times:
        return Decision(final=f"ran out of memory with {gib(memory_mib)} after {times} of {times} recoveries")
    if memory_mib >= limit:
        return Decision(
            final=f"ran out of memory with {gib(memory_mib)}, all the largest instance of queue `{queue}` has: "
            "not resubmitted"
        )
    grown = min(math.ceil(memory_mib * policy.grow), limit)
    return Decision(
        due=RecoveryDue(
            number=number,
            kind="out_of_memory",
            memory_mib=grown,
            queue=queue,
            queue_arn=queue_arn,
            attempts=policy.attempts,
            counts=counts.model_copy(update={"out_of_memory": done + 1}),
            words=f"ran out of memory with {gib(memory_mib)}; retrying with {gib(grown)} ({done + 1} of {times})",
        )
    )


def recovery_job_name(
    spec_name: str, step: str, run_id: str, *, failed_step: str, number: int, depends_on: Sequence[str] = ()
) -> str:
    """The new job's name: `<spec>-<step>-<run id>-r<n>` for the step that failed; a step after it,
    submitted again to depend on the new job, carries the failed step's mark too, and a mark of the jobs it
    depends on (`depends_on`, their ids), so every recovery's jobs have names of their own (a resubmission
    is found by its name: exactly once), and a copy made on a stale view of the run (another step's
    recovery moved a job it waits for meanwhile) is never adopted by the retry that sees the new one."""
    mark = f"r{number}"
    if step != failed_step:
        mark += "-" + hashlib.sha256(failed_step.encode()).hexdigest()[:4]
        mark += "-" + hashlib.sha256(",".join(sorted(depends_on)).encode()).hexdigest()[:4]
    return job_name(spec_name, step, f"{run_id}-{mark}")


def recovered_request(request: Mapping[str, Any], *, name: str, due: RecoveryDue | None = None) -> dict[str, Any]:
    """A planned SubmitJob request (all but `dependsOn`) for a recovery's job: renamed, and for the job
    that failed, on the decided queue with the decided memory and attempts."""
    changed: dict[str, Any] = {**request, "jobName": name}
    if due is None:
        return changed
    changed["jobQueue"] = due.queue_arn
    overrides = dict(changed.get("containerOverrides", {}))
    requirements = [dict(item) for item in overrides.get("resourceRequirements", [])]
    for item in requirements:
        if item["type"] == "MEMORY":
            item["value"] = str(due.memory_mib)
    overrides["resourceRequirements"] = requirements
    changed["containerOverrides"] = overrides
    strategy = dict(changed.get("retryStrategy", {}))
    if due.attempts > 1 or strategy:
        strategy["attempts"] = due.attempts
        changed["retryStrategy"] = strategy
    if due.children is not None:
        just_these_children(changed, due.children)
    return changed


def just_these_children(request: dict[str, Any], children: str) -> None:
    """Make `request` (an array job's) run only `children` (original indices): an array of them, or a
    single job for one, told their original indices (`BATCHDROP_CHILD_INDICES`); the prelude maps each
    new index back, so a child sees the `SWEEP_*` and `BATCHDROP_CHILD_INDEX` it had."""
    count = len(expand_indices(children))
    if count > 1:
        request["arrayProperties"] = {**request.get("arrayProperties", {}), "size": count}
    else:
        request.pop("arrayProperties", None)
    overrides = dict(request.get("containerOverrides", {}))
    environment = [item for item in overrides.get("environment", []) if item["name"] != CHILD_INDICES_VARIABLE]
    overrides["environment"] = [*environment, {"name": CHILD_INDICES_VARIABLE, "value": children}]
    command = overrides.get("command")
    if command and not is_wrapped(command):  # a plain array: the prelude gives BATCHDROP_CHILD_INDEX
        overrides["command"] = wrap_command(command, {})
    request["containerOverrides"] = overrides


def policy_for(
    retries: Retries, queue: QueueConfig, fallback_name: str | None, fallback: QueueConfig | None
) -> RecoveryPolicy:
    """A job's recovery policy: its spec's `retries`, its queue's largest instance, its route's fallback."""
    spot = retries.spot_fallback
    oom = retries.out_of_memory
    return RecoveryPolicy(
        out_of_memory_times=oom.times if oom else 0,
        grow=oom.grow if oom else 2.0,
        max_memory_mib=queue.max_memory_mib,
        attempts=retries.attempts,
        spot_fallback_after=spot.after if spot else None,
        fallback_queue=fallback_name if spot and fallback else None,
        fallback_queue_arn=fallback.arn if spot and fallback else None,
        fallback_max_memory_mib=fallback.max_memory_mib if spot and fallback else None,
    )


def retry_strategy(retries: Retries) -> dict[str, Any] | None:
    """Batch's `retryStrategy` for a spec's `retries`, or None when Batch is not to retry.

    The conditions are tried in order and the first that matches decides; none matching means retry.
    Out of memory ends the job at once when batchdrop resubmits it with more (Batch would retry it with
    the same memory); with `spot_fallback` a job gets at most `after` attempts on spot capacity, then
    batchdrop resubmits it on the fallback queue."""
    attempts = retries.attempts
    if retries.spot_fallback is not None:
        attempts = min(attempts, retries.spot_fallback.after)
    if attempts < 2:
        return None
    conditions: list[dict[str, str]] = []
    if retries.out_of_memory is not None:
        conditions.append({"onReason": "OutOfMemoryError*", "action": "EXIT"})
    if retries.on_spot_interruption or retries.on_exit_codes:
        conditions.append({"onStatusReason": "Host EC2*", "action": "RETRY"})
        conditions += [{"onExitCode": str(code), "action": "RETRY"} for code in retries.on_exit_codes]
        conditions.append({"onReason": "*", "action": "EXIT"})
    strategy: dict[str, Any] = {"attempts": attempts}
    if conditions:
        strategy["evaluateOnExit"] = conditions
    return strategy
