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


def stream_url(region: str, group: str | None, stream: str | None) -> str | None:
    """A log stream's console page, where it is known: None without a stream or a region (a link to no
    region's console would not open). A group of None is Batch's default."""
    if not (stream and region):
        return None
    return log_url(region, group or DEFAULT_LOG_GROUP, stream)
