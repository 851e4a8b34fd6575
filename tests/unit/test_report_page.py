"""The run report page (docs/report.md): what a reader finds on it, for each kind of run, and that it
loads nothing and runs nothing it was not written to."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from batchdrop.report.arrays import MAX_FAILED_CHILD_ROWS
from batchdrop.report.page import render_report
from batchdrop.store.records import JobRecord, NodeEnd
from tests import report_scenarios
from tests.report_scenarios import Scenario
from tests.unit.test_multinode_tracking import out_of_memory_end


def render(scenario: Scenario, **options: object) -> str:
    return render_report(scenario.run, scenario.jobs, scenario.children, now=scenario.now, **options)  # type: ignore[arg-type]


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, and its visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.words: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style:
            self.words.append(data)

    def with_class(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.tags if name in (attrs.get("class") or "").split()]


def visible(elements: Elements) -> str:
    """The page's text as a reader sees it (its style left out)."""
    return re.sub(r"\s+", " ", "".join(elements.words))


def parsed(page: str) -> Elements:
    elements = Elements()
    elements.feed(page)
    return elements


@pytest.mark.parametrize("name", sorted(report_scenarios.ALL))
def test_every_report_is_one_page_that_loads_nothing_and_runs_no_script(name: str) -> None:
    page = render(report_scenarios.ALL[name]())
    elements = parsed(page)
    tags = {tag for tag, _ in elements.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "image", "use"}
    assert all("src" not in attrs for _, attrs in elements.tags)
    assert not re.search(r"url\(|@import|@font-face", page)
    hrefs = [attrs["href"] for _, attrs in elements.tags if attrs.get("href")]
    console = re.compile(r"https://([a-z0-9-]+\.)?console\.aws\.amazon\.com/")
    assert all(console.match(str(href)) for href in hrefs)  # logs and Batch's job pages only, never loaded
    assert "default-src 'none'" in page  # and the browser is told to load nothing, whatever slips in


def test_a_pipeline_shows_a_bar_per_attempt_its_recovery_and_its_reused_step() -> None:
    scenario = report_scenarios.pipeline()
    elements = parsed(render(scenario))
    bars = elements.with_class("bar")
    assert [(bar["data-step"], bar["data-attempt"], bar["data-outcome"]) for bar in bars] == [
        ("train", "1", "failed"),  # the spot reclaim, retried by Batch
        ("train", "2", "failed"),  # out of memory: recovered
        ("train", "1", "succeeded"),  # the recovery, with twice the memory
        ("evaluate", "1", "failed"),  # waited for the failed train, replaced
        ("evaluate", "1", "succeeded"),
    ]
    assert len(bars) == len(scenario.bar_labels)
    text = visible(elements)
    for label in scenario.bar_labels:
        assert label in text
    assert "recovered by job train-2" in text
    assert "recovery of job train-1" in text
    reused = elements.with_class("reused")
    assert [row["data-step"] for row in reused if row.get("data-job")] == ["prep"]
    assert "from run run-earlier (job prep-0): not run again" in text
    assert "ran out of memory with 16 GiB; retrying with 32 GiB (1 of 2)" in text


def test_a_pipeline_tells_who_dropped_which_file_its_resources_and_usage() -> None:
    text = visible(parsed(render(report_scenarios.pipeline())))
    assert "AWS:AROAEXAMPLE:ada@example.com" in text
    assert "s3://jobs-bucket/incoming/vision/resnet/train.yaml" in text
    assert "(version v3)" in text
    assert "2026-11-30 09:00:00 UTC" in text
    assert "4 vCPU, 32 GiB" in text
    assert "2 vCPU, 8 GiB, 1 GPU" in text
    assert "6.24" in text  # vCPU-hours of the jobs run here, the recovered one included; prep's not
    assert "Cost" not in text  # no prices given: no cost column


def test_every_failure_is_told_in_words_with_its_log() -> None:
    page = render(report_scenarios.pipeline())
    failures = page[page.index('id="failures"') :]
    assert "attempt 1 failed: the instance was reclaimed (spot interruption)" in failures
    assert "attempt 2 failed: out of memory (exit code 137)" in failures
    assert "OutOfMemoryError: Container killed due to memory usage" in failures
    assert "a job it depends on failed" in failures
    assert ">log of attempt 2</a>" in failures
    assert "train-1-2" in failures  # attempt 2's own stream


def test_costs_are_shown_per_step_and_in_total_only_when_a_price_is_given() -> None:
    scenario = report_scenarios.pipeline()
    prices = {"train-1": 1.25, "train-2": 2.5, "evaluate-2": 0.75}

    def cost_of(job: JobRecord) -> float | None:
        return prices.get(job.job_id)

    text = visible(parsed(render(scenario, cost_of=cost_of)))
    assert "Cost (est.)" in text
    assert "$2.50" in text
    assert "$4.50" in text  # the total of what is known


def test_user_text_is_escaped_everywhere() -> None:
    scenario = report_scenarios.pipeline()
    evil = "<script>alert('x')</script>"
    run = scenario.run.model_copy(update={"spec_name": evil, "reason": evil, "warnings": [evil], "dropped_by": evil})
    jobs = [
        job.model_copy(update={"step": evil, "failure": evil, "status_reason": evil, "recovery_final": evil})
        for job in scenario.jobs
    ]
    page = render_report(run, jobs, {}, now=scenario.now)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_a_log_link_that_is_not_https_is_shown_but_not_followed() -> None:
    scenario = report_scenarios.pipeline()
    link = scenario.jobs[1].log_links[0].model_copy(update={"url": "javascript:alert(1)"})
    jobs = [scenario.jobs[0], scenario.jobs[1].model_copy(update={"log_links": [link]}), *scenario.jobs[2:]]
    page = render_report(scenario.run, jobs, {}, now=scenario.now)
    assert "javascript:" not in page


def test_a_sweep_shows_its_children_by_status_and_its_failed_children_without_a_row_per_child() -> None:
    scenario = report_scenarios.sweep()
    page = render(scenario)
    elements = parsed(page)
    text = visible(elements)
    assert "FAILED 40, SUCCEEDED 960" in text
    assert "children 100-129" in text  # out of memory
    assert "children 990-999" in text
    assert "ran out of memory" in text
    assert "batchdrop logs run-sweep --step lr-sweep --index 100" in text
    assert "and 20 more" in text  # 40 failed, the first 20 one per row
    rows = [tag for tag, _ in elements.tags if tag == "tr"]
    assert len(rows) < MAX_FAILED_CHILD_ROWS + 10  # 40 failed children, a few table rows: never 1,000
    assert len(page.encode()) < 40_000
    columns = {attrs["data-attempts"]: attrs["data-children"] for attrs in elements.with_class("column")}
    assert columns == {"1": "971", "2": "29"}  # ended children by attempts made


def test_a_sweeps_children_run_times_are_a_histogram_with_the_median_and_90th_percentile_in_words() -> None:
    scenario = report_scenarios.sweep()
    elements = parsed(render(scenario))
    buckets = elements.with_class("bucket")
    assert sum(int(attrs["data-children"] or 0) for attrs in buckets) == 1000, "every ended child, once"
    assert [float(attrs["data-from"] or 0) for attrs in buckets] == sorted(
        float(attrs["data-from"] or 0) for attrs in buckets
    ), "shortest first"
    assert len(buckets) == 15, "one bar a bucket from the shortest to the longest, empty ones too: bounded"
    text = visible(elements)
    seconds = sorted(report_scenarios.child_seconds(index) for index in range(1000))
    median, p90 = seconds[499], seconds[899]
    said = re.search(r"median about (\d+) min(?: (\d+) s)?, 90th percentile about (\d+) min(?: (\d+) s)?", text)
    assert said is not None, text
    told_median = int(said.group(1)) * 60 + int(said.group(2) or 0)
    told_p90 = int(said.group(3)) * 60 + int(said.group(4) or 0)
    assert told_median == pytest.approx(median, rel=0.2)
    assert told_p90 == pytest.approx(p90, rel=0.2)
    assert "of 1,000 children, each its last attempt" in text


def test_an_array_without_run_times_kept_says_so() -> None:
    scenario = report_scenarios.sweep()
    children = scenario.children["sweep-1"]
    before = children.__class__(states=children.states, version=1, counts=children.counts, usage=children.usage)
    text = visible(parsed(render_report(scenario.run, scenario.jobs, {"sweep-1": before}, now=scenario.now)))
    assert "No child's run time is recorded yet" in text


def child_links(elements: Elements) -> list[str]:
    return [
        attrs["href"] or ""
        for tag, attrs in elements.tags
        if tag == "a" and any(part in (attrs["href"] or "") for part in ("lr-sweep$252Fdefault", "sweep-1:"))
    ]


def test_a_sweeps_failed_children_show_their_values_failure_and_the_childs_log() -> None:
    scenario = report_scenarios.sweep()
    elements = parsed(render(scenario))
    text = visible(elements)
    assert "Sweep values" in text
    assert "100lr=0.1 batch=128 seed=01ran out of memory" in text  # index, values, attempts, failure
    assert "log of sweep-1:100" in text
    links = child_links(elements)
    assert len(links) == MAX_FAILED_CHILD_ROWS, "each listed row links its child's log"
    assert links[0] == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/"
        f"$252Faws$252Fbatch$252Fjob/log-events/{report_scenarios.child_log_stream(100).replace('/', '$252F')}"
    )
    assert not any("/batch/home" in href for href in links), "no console page where the log is known"


def test_a_failed_child_with_no_log_kept_links_its_jobs_page() -> None:
    scenario = report_scenarios.sweep()
    children = scenario.children["sweep-1"]
    # a child that failed before it started (no stream), and items kept before logs were
    without_100 = replace(children, failed_logs={i: log for i, log in children.failed_logs.items() if i != 100})
    for kept in (without_100, replace(children, failed_logs={})):
        elements = parsed(render_report(scenario.run, scenario.jobs, {"sweep-1": kept}, now=scenario.now))
        links = child_links(elements)
        assert "https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1#jobs/detail/sweep-1:100" in links
        assert "batchdrop logs run-sweep --step lr-sweep --index 100" in visible(elements)
        assert len(links) == MAX_FAILED_CHILD_ROWS


def test_a_recovery_arrays_failed_child_links_its_own_childs_log() -> None:
    scenario = report_scenarios.sweep()
    array = scenario.jobs[0].model_copy(update={"array_size": 3, "child_indices": "100,105,990"})
    children = scenario.children["sweep-1"]
    states = replace(children, states="151726", failed_logs={1: ("/aws/batch/job", "lr-sweep/default/recovered")})
    elements = parsed(render_report(scenario.run, [array], {"sweep-1": states}, now=scenario.now))
    text = visible(elements)
    assert "105 (here 1)" in text
    assert "log of sweep-1:1" in text, "the recovery's child 1 (the original 105) links its own log"
    assert any(href.endswith("lr-sweep$252Fdefault$252Frecovered") for href in child_links(elements))


def test_a_plain_arrays_failed_children_have_no_sweep_values() -> None:
    scenario = report_scenarios.sweep()
    plain = scenario.jobs[0].model_copy(update={"sweep": None})
    text = visible(parsed(render_report(scenario.run, [plain], scenario.children, now=scenario.now)))
    assert "Sweep values" not in text
    assert "ran out of memory" in text


def test_a_recovered_arrays_children_keep_their_original_indices() -> None:
    scenario = report_scenarios.sweep()
    array = scenario.jobs[0].model_copy(update={"array_size": 3, "child_indices": "100,105,990"})
    children = scenario.children["sweep-1"]
    states = children.__class__(states="151726", version=1, counts={}, usage=children.usage)
    text = visible(parsed(render_report(scenario.run, [array], {"sweep-1": states}, now=scenario.now)))
    assert "children 105" in text
    assert "105 (here 1)lr=0.1 batch=128 seed=5" in text, "a recovery's child shows its original's values"
    assert "children 990" in text


def test_an_array_whose_children_were_not_read_shows_its_counts() -> None:
    scenario = report_scenarios.sweep()
    text = visible(parsed(render_report(scenario.run, scenario.jobs, {}, now=scenario.now)))
    assert "FAILED 40, SUCCEEDED 960" in text
    assert "counts only" in text


def test_a_rejected_run_shows_its_problems() -> None:
    text = visible(parsed(render(report_scenarios.rejected())))
    assert "rejected" in text
    assert "line 12, column 7: steps[1].resources.gpus: a gpu step needs a gpu queue: none is routed" in text
    assert "unknown field `imgae`" in text
    assert "Problems (3)" in text
    assert "and 1 more" in text
    assert "Timeline" not in text


def test_a_run_in_progress_shows_its_running_and_waiting_jobs_as_of_now() -> None:
    scenario = report_scenarios.in_progress()
    elements = parsed(render(scenario))
    assert [(bar["data-step"], bar["data-outcome"]) for bar in elements.with_class("bar")] == [
        ("prep", "running"),
        ("train", "queued"),
    ]
    text = visible(elements)
    assert "The run has not ended: this page shows it as of 2026-11-30 09:30:00 UTC" in text
    assert "ran 27 min" in text  # RUNNING since 09:03


def test_a_cancelled_run_shows_who_cancelled_it_and_its_job_as_cancelled() -> None:
    scenario = report_scenarios.in_progress()
    prep, train = scenario.jobs
    stopped = prep.model_copy(
        update={
            "status": "FAILED",
            "failure_class": "cancelled",
            "failure": "cancelled by ada",
            "finished_at": scenario.now,
        }
    )
    run = scenario.run.model_copy(
        update={
            "status": "cancelled",
            "finished_at": scenario.now,
            "cancelled_by": "arn:aws:sts::123456789012:assumed-role/dev/ada",
            "cancel_requested_at": scenario.now,
            "cancel_reason": "wrong learning rate",
        }
    )
    elements = parsed(render_report(run, [stopped, train], {}, now=scenario.now))
    assert elements.with_class("bar")[0]["data-outcome"] == "cancelled"
    text = visible(elements)
    assert "by arn:aws:sts::123456789012:assumed-role/dev/ada at 2026-11-30 09:30:00 UTC: wrong learning rate" in text
    assert "CANCELLED" in text
    assert "cancelled: cancelled by ada" in text


def test_a_failed_multi_node_job_shows_its_nodes_and_the_failed_nodes_log() -> None:
    scenario = report_scenarios.pipeline()
    last = scenario.jobs[1].attempts  # the line counts the ends of the job's last attempt
    train = scenario.jobs[1].model_copy(
        update={
            "nodes": 4,
            "node_ends": {
                "0": NodeEnd(attempt=last, status="SUCCEEDED", exit_code=0),
                "1": NodeEnd(attempt=last, status="SUCCEEDED", exit_code=0),
                "2": out_of_memory_end("ddp/default/node2").model_copy(update={"attempt": last}),
                "3": NodeEnd(attempt=last, status="SUCCEEDED", exit_code=0),
            },
        }
    )
    jobs = [scenario.jobs[0], train, *scenario.jobs[2:]]
    elements = parsed(render_report(scenario.run, jobs, {}, now=scenario.now))
    assert "4 nodes: 3 succeeded, node 2 failed: exit code 137 — out of memory" in visible(elements)
    hrefs = [attrs["href"] or "" for tag, attrs in elements.tags if tag == "a"]
    assert any("ddp$252Fdefault$252Fnode2" in href and href.startswith("https://us-east-1.") for href in hrefs)
