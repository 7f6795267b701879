"""What every command group shares, defined once: the ``--db`` option, the invocation's
settings and the store they open."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from auditor.settings import Settings

__all__ = ["DbOption", "cli_settings", "new_invocation", "open_store"]

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (default: $AUDITOR_DATABASE_URL or sqlite:///auditor.sqlite)."
    ),
]

_invocation: dict[str, Settings] = {}
"""The settings of the command being run (cleared by `new_invocation` as each one starts)."""


def new_invocation() -> None:
    """Forget the previous command's settings (the root callback calls this first, so a
    process that runs several commands, as tests do, reads the environment afresh for each)."""
    _invocation.clear()


def cli_settings(db: str | None = None) -> Settings:
    """The invocation's settings: read from the environment once (when first needed) for the
    command being run; ``db`` (a ``--db`` given) overrides the database URL."""
    # pydantic-settings only when a command needs settings: `auditor schema` starts faster.
    from auditor.settings import load_settings

    if "settings" not in _invocation:
        _invocation["settings"] = load_settings()
    return _invocation["settings"].with_database(db)


def open_store(db: str | None) -> Any:
    """The store of ``--db`` (or of the settings), its schema brought up to date."""
    # SQLAlchemy only for commands that use the database (start-up time).
    from auditor.storage.store import Store

    store = Store(cli_settings(db).database.url)
    store.migrate()
    return store
