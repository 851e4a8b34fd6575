"""The `batchdrop` command line: validate and plan offline, and operate a deployed stack.

Not part of the Lambda layer: it imports the domain (`batchdrop`), no function imports it."""
