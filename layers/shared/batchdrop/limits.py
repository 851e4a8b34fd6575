"""Every bound on the work one message may cause, in one place, each with its reason.

A spec file is user input: whatever it holds, deciding it must take bounded CPU,
and whatever batchdrop writes because of it (a record, a receipt, an event) must
fit its service's limit by construction, never be discovered by a failed call.
`docs/operations.md` ("What batchdrop guarantees") lists the guarantees these serve.
"""

from __future__ import annotations

# ---------------------------------------------------------------------- bytes: AWS's own limits

SNS_MESSAGE_BYTES = 256 * 1024
"""SNS refuses a message (body and attributes) over 256 KiB."""
DYNAMODB_ITEM_BYTES = 400 * 1024
"""DynamoDB refuses an item over 400 KB (names and values together)."""
S3_KEY_BYTES = 1024
"""S3 refuses a key over 1,024 bytes of UTF-8."""

# ---------------------------------------------------------------------- bytes: batchdrop's budgets

EVENT_BYTES = 64 * 1024
"""An event's JSON body at most: a quarter of SNS's limit, so a full PublishBatch of ten still fits
its 256 KiB, and a few pending events fit in the outbox of one record."""
ECHOED_VALUE_CHARS = 200
"""A user's value quoted in a problem message is cut to this (with an ellipsis that says so): a
200 KB value must not make a 200 KB error."""
PROBLEM_MESSAGE_CHARS = 1000
"""A problem's whole message at most (its path likewise)."""
RECORD_BYTES = 300 * 1024
"""A run or job record as written at most: DynamoDB's 400 KB less room for the outbox and the
attributes tracking adds later."""

SWEEP_RECORD_BYTES = 32 * 1024
"""A sweep's axes and values kept beside its job (`JobRecord.sweep`, so the report can say each failed
child's values) at most, as JSON: the bound of its item (`JOB#<id>` / `SWEEP`, written once, never updated;
not on the job's record, which every state change rewrites and DynamoDB bills by its whole size), which the
report reads at a read unit per 4 KB. A larger sweep (thousands of long values) is not kept: its failed
children are named by index. Batch's SubmitJob (30 KiB a request) sends no larger sweep anyway."""

NODE_FAILURE_CHARS = 80
"""A failed node's failure in words as its job record keeps it (`records.NodeEnd`) at most."""
NODE_FAILURE_MIN_CHARS = 32
"""A failed node's words are cut down to this to make room for its log stream (enough for `out of memory
(exit code 137)`; its history keeps them whole); below it the log stream is dropped instead."""
NODE_END_BYTES = 200
"""A node's end as its job record keeps it at most, as JSON (`records.NodeEnd.fitted`): × Batch's 1,000
nodes, 200 KB, half of DynamoDB's item limit, whatever the nodes say (the rest of a job's record, every
field at its worst, is under 90 KB: tests/unit/test_record_item_bounds.py). One longer has its words cut
to keep its log stream, or, with a long log group or stream, drops the log stream: `batchdrop logs --node
N` still finds it, in the job's history."""

FAILED_CHILD_LOGS = 20
"""An array's failed children whose log stream its children item keeps (`items.Children.failed_logs`): the
lowest indices, as many as the report lists one per row (`report.arrays.MAX_FAILED_CHILD_ROWS`), so each
listed row that has a log links it. A log group and a stream are 512 characters each at most in CloudWatch,
so 20 streams add at most about 21 KB to the item (a 10,000-child array's states are 20 KB), whatever
the array's size: the children item stays one read and one write a batch. The others' logs are still
read by `batchdrop logs --index`."""

# ---------------------------------------------------------------------- counts

MAX_PROBLEMS = 100
"""Problems found in one file at most: the check stops there and says there may be more. More would
help no one fix the file, and building each costs time."""

# ---------------------------------------------------------------------- CPU

ECHOED_LIST_ITEMS = 10
"""User values named in one message at most (say, the values of a sweep that repeat), then "and N
more": a list of thousands would cost as much to write as to read, and no one reads it."""
SUGGESTED_NAME_CHARS = 64
"""An unknown field longer than this gets no did-you-mean: no field name is near as long, and
comparing a 200 KB name with every field costs time for a suggestion that cannot be."""
