"""batchdrop: a serverless control plane for AWS Batch.

This package is the shared Lambda layer. It holds the domain (job specs, the
platform config, routing and planning) and the small gateways to AWS; it knows
nothing of Lambda. Keep this module free of imports: handlers pay for what
they import at cold start.
"""

__version__ = "0.1.0"
