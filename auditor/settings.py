"""The one configuration of the service, read from the environment (prefix ``AUDITOR_``).

`Settings` is built once per process (`get_settings`, or by the caller: the CLI's root
command, ``create_app(settings)``, ``workers.app.configure(settings)``) and passed down; nothing
else reads the environment for configuration. It is made of groups, each one a small
pydantic-settings model whose fields keep their documented variable names::

    settings.database.url            AUDITOR_DATABASE_URL
    settings.worker.batch_size       AUDITOR_BATCH_SIZE
    settings.api.max_stream_bytes    AUDITOR_MAX_STREAM_BYTES
    settings.signing.key_path        AUDITOR_SIGNING_KEY_PATH
    settings.webhook.max_attempts    AUDITOR_WEBHOOK_MAX_ATTEMPTS

Give a group as an object to override part of it (the group's other fields are still read from
the environment): ``Settings(database=DatabaseSettings(url="sqlite:///x.sqlite"))``, or
`Settings.with_database`.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_DRIFT_BOOTSTRAP",
    "DEFAULT_MAX_STREAM_BYTES",
    "ApiSettings",
    "DatabaseSettings",
    "DriftSettings",
    "ScheduleSettings",
    "Settings",
    "SigningSettings",
    "WebhookSettings",
    "WorkerSettings",
    "environment_variables",
    "get_settings",
    "load_settings",
]

DEFAULT_DATABASE_URL = "sqlite:///auditor.sqlite"
DEFAULT_MAX_STREAM_BYTES = 8 * 1024**3
DEFAULT_DRIFT_BOOTSTRAP = 2000


def _group(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", frozen=True)


class DatabaseSettings(BaseSettings):
    """Where everything is stored (``AUDITOR_DATABASE_URL``)."""

    model_config = _group("AUDITOR_DATABASE_")

    url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: a SQLite file by default, postgresql+psycopg://... in "
        "deployment.",
    )


class WorkerSettings(BaseSettings):
    """The broker, the workers' batches and their model calls."""

    model_config = SettingsConfigDict(
        env_prefix="AUDITOR_", extra="ignore", frozen=True, env_parse_none_str="none"
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
        default=30.0,
        description="Seconds between beat's sweeps of stalled audits and webhook deliveries.",
    )
    batch_size: int = Field(default=128, ge=1, description="Model calls per Celery task.")
    call_timeout: float = Field(default=60.0, gt=0, description="Seconds per model call.")
    max_retries: int = Field(default=5, ge=0, description="Retries of a transient failure.")
    retry_base_delay: float = Field(
        default=0.5, ge=0, description="First retry backoff in seconds (doubles, jittered)."
    )
    retry_max_delay: float = Field(default=30.0, ge=0, description="Cap of one backoff.")
    default_deadline_seconds: float | None = Field(
        default=86_400.0,
        gt=0,
        description="The deadline of an audit whose spec sets no `deadline_seconds`: after this "
        "many seconds of running, calls still failing with transient errors are given up and "
        "counted (a provider that answers 503 for ever does not keep an audit open for ever). "
        "`none`: retry until they succeed.",
    )


class ApiSettings(BaseSettings):
    """What only the HTTP service reads."""

    model_config = _group("AUDITOR_")

    max_body_bytes: int = Field(
        default=50 * 1024 * 1024, description="Largest JSON request body the API accepts."
    )
    max_stream_bytes: int = Field(
        default=DEFAULT_MAX_STREAM_BYTES,
        ge=0,
        description="Largest streamed JSONL upload (POST /v1/evaluations:stream), in bytes. "
        "The upload is never held in memory, so this may be far larger than max_body_bytes.",
    )
    allowed_api_bases: list[str] = Field(
        default_factory=list,
        description="API base URLs that audit specs submitted over the API may name (a JSON "
        'list, e.g. ["http://llama:8080/v1"]). Any other api_base is refused: litellm sends '
        "provider keys from the server's environment to the model's API base.",
    )


class SigningSettings(BaseSettings):
    """The report signing key."""

    model_config = _group("AUDITOR_SIGNING_")

    key_path: str | None = Field(
        default=None,
        description="PEM file of the Ed25519 report signing key (created there if missing). "
        "Unset: a key generated on first use and kept in the database.",
    )


class ScheduleSettings(BaseSettings):
    """Scheduled audits."""

    model_config = _group("AUDITOR_SCHEDULE_")

    poll_interval: float = Field(
        default=5.0, gt=0, description="Seconds between beat's reads of the schedules table."
    )
    min_interval: float = Field(
        default=60.0,
        ge=0,
        description="Shortest time between two slots a schedule may have, in seconds.",
    )


class DriftSettings(BaseSettings):
    """Drift between scheduled runs."""

    model_config = _group("AUDITOR_DRIFT_")

    bootstrap: int = Field(
        default=DEFAULT_DRIFT_BOOTSTRAP,
        ge=0,
        description="Bootstrap resamples of the drift CI (per judge).",
    )


class WebhookSettings(BaseSettings):
    """Notifications to schedules' webhooks."""

    model_config = _group("AUDITOR_WEBHOOK_")

    timeout: float = Field(default=10.0, gt=0, description="Seconds per webhook POST.")
    max_attempts: int = Field(default=6, ge=1, description="Attempts per notification.")
    retry_base_delay: float = Field(
        default=2.0, ge=0, description="Seconds before the 2nd attempt (doubles each time)."
    )
    retry_max_delay: float = Field(
        default=600.0, ge=0, description="Longest wait between two attempts."
    )
    sweep_grace: float = Field(
        default=60.0,
        ge=0,
        description="Seconds past its due time before beat's sweep re-sends an attempt whose "
        "task message was lost (a broker restart, a worker killed mid-POST).",
    )
    allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs on loopback and private networks (off: a tenant could "
        "otherwise make the service call internal addresses).",
    )


class Settings(BaseSettings):
    """Every setting has a default that works on a fresh machine with no services."""

    model_config = SettingsConfigDict(env_prefix="AUDITOR_", extra="ignore", frozen=True)

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    signing: SigningSettings = Field(default_factory=SigningSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)

    def with_database(self, url: str | None) -> Settings:
        """These settings on another database (``None``: unchanged), e.g. the CLI's ``--db``."""
        if url is None or url == self.database.url:
            return self
        return self.model_copy(update={"database": DatabaseSettings(url=url)})


def environment_variables() -> dict[str, tuple[str, str]]:
    """Every variable read, mapped to its (group, field): ``AUDITOR_BATCH_SIZE`` ->
    ``("worker", "batch_size")``."""
    names: dict[str, tuple[str, str]] = {}
    for group, info in Settings.model_fields.items():
        model = info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseSettings)):
            raise TypeError(f"Settings.{group}: not a settings group ({model!r})")
        prefix = str(model.model_config.get("env_prefix", ""))
        for field in model.model_fields:
            names[f"{prefix}{field}".upper()] = (group, field)
    return names


def load_settings() -> Settings:
    """Settings read from the environment now (a CLI invocation reads them once, at its start)."""
    return Settings()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of a long-running process (API, worker, beat), read once and kept."""
    return load_settings()
