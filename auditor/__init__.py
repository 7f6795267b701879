"""Judge Auditor: audits LLM judges for affinity bias and other judging biases.

The core (this package) holds the schemas, the statistics, storage and the services; it never
imports litellm or celery. Model I/O lives in `workers`, rendering in `reports`.
"""

__version__ = "0.1.0"
