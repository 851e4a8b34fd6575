"""The platform team's config (queues, teams, routes) and where it is read from, and planning:
routing each job to a queue and building the exact SubmitJob requests, with run ids and job names.

See docs/architecture.md."""
