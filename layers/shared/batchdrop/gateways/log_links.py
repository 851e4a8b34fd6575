"""Where a CloudWatch log stream is read in the console: tracking links each attempt's log with it, the
publish function a multi-node job's nodes' (`job.status`'s `nodes`)."""

from __future__ import annotations

from urllib.parse import quote

DEFAULT_LOG_GROUP = "/aws/batch/job"
"""Where Batch's containers log unless their job definition says otherwise."""


def log_url(region: str, group: str, stream: str) -> str:
    """The CloudWatch console page of a log stream (the console double-escapes `/` as `$252F`)."""

    def escape(text: str) -> str:
        return quote(text, safe="").replace("%", "$25")

    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{escape(group)}/log-events/{escape(stream)}"
    )
