"""Service configuration, read from the environment (prefix ``AUDITOR_``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_DATABASE_URL", "Settings", "get_settings"]

DEFAULT_DATABASE_URL = "sqlite:///auditor.sqlite"


class Settings(BaseSettings):
    """Every setting has a default that works on a fresh machine with no services."""

    model_config = SettingsConfigDict(env_prefix="AUDITOR_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: a SQLite file by default, postgresql+psycopg://... in "
        "deployment.",
    )
    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="Celery broker (Redis)."
    )
    result_backend: str = Field(
        default="redis://127.0.0.1:6379/1", description="Celery result backend (Redis)."
    )
    rate_limit_url: str | None = Field(
        default=None,
        description="Redis URL for the shared provider rate limiter (default: the broker URL "
        "when it is Redis, else an in-process limiter).",
    )
    visibility_timeout: int = Field(
        default=600,
        description="Seconds before Redis redelivers an unacknowledged task (a killed "
        "worker's); keep it above lease_seconds.",
    )
    lease_seconds: float = Field(
        default=120.0,
        description="Seconds a batch's calls stay reserved without a heartbeat; a running "
        "batch renews its lease every third of this, so only a dead run's calls expire.",
    )
    sweep_interval: float = Field(
        default=30.0, description="Seconds between beat's sweeps of stalled audits."
    )
    batch_size: int = Field(default=128, ge=1, description="Model calls per Celery task.")
    call_timeout: float = Field(default=60.0, gt=0, description="Seconds per model call.")
    max_retries: int = Field(default=5, ge=0, description="Retries of a transient failure.")
    retry_base_delay: float = Field(
        default=0.5, ge=0, description="First retry backoff in seconds (doubles, jittered)."
    )
    retry_max_delay: float = Field(default=30.0, ge=0, description="Cap of one backoff.")
    max_body_bytes: int = Field(
        default=50 * 1024 * 1024, description="Largest JSON request body the API accepts."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
