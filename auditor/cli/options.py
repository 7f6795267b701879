"""What every command group shares, defined once: the ``--db`` option, the invocation's
settings and the store they open."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from auditor.settings import Settings

__all__ = ["DbOption", "cli_settings", "open_store"]

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (default: $AUDITOR_DATABASE_URL or sqlite:///auditor.sqlite)."
    ),
]

_SETTINGS_KEY = "auditor.settings"


def cli_settings(db: str | None = None) -> Settings:
    """The invocation's settings: read from the environment once (when first needed) and kept
    on the command's root context; ``db`` (a ``--db`` given) overrides the database URL."""
    # pydantic-settings only when a command needs settings: `auditor schema` starts faster.
    import click  # here, not at start-up (~10 ms): only commands that read settings use it

    from auditor.settings import load_settings

    context = click.get_current_context(silent=True)
    meta: dict[str, Any] = context.find_root().meta if context is not None else {}
    if _SETTINGS_KEY not in meta:
        meta[_SETTINGS_KEY] = load_settings()
    settings: Settings = meta[_SETTINGS_KEY]
    return settings.with_database(db)


def open_store(db: str | None) -> Any:
    """The store of ``--db`` (or of the settings), its schema brought up to date."""
    # SQLAlchemy only for commands that use the database (start-up time).
    from auditor.storage.store import Store

    store = Store(cli_settings(db).database.url)
    store.migrate()
    return store
