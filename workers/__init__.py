"""Celery app and tasks: the only place that talks to models (through litellm)."""
