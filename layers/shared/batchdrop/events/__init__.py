"""The event contract (`batchdrop.event/v1`): the models every teller publishes and every
listener reads, and their JSON Schemas in docs/events/.

See docs/architecture.md."""
