"""The REST API (FastAPI): evaluations, audits, results and reports under ``/v1``."""

from auditor.api.main import create_app

__all__ = ["create_app"]
