"""CLI commands of the HTTP service: `auditor serve` and `auditor keys ...`."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from auditor.cli.options import DbOption, open_store
from auditor.cli.terminal import lazy_console

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "keys_app", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
EXIT_NOT_FOUND = 1
EXIT_INVALID = 2

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
_err = lazy_console(stderr=True)


@keys_app.callback()
def _cli_actor(ctx: typer.Context) -> None:
    """Keys created or revoked here are recorded in the audit trail as ``cli:<user>``."""
    from auditor.services import trail

    token = trail.bind_actor(trail.cli_actor())
    ctx.call_on_close(lambda: trail.reset_actor(token))


@keys_app.command("create")
def create(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant the key acts for.")],
    name: Annotated[str | None, typer.Option("--name", help="A label for the key.")] = None,
    db: DbOption = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from auditor.services.keys import create_key, validate_tenant

    try:
        validate_tenant(tenant)
    except ValueError as error:
        _err.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    info, raw_key = create_key(open_store(db), tenant=tenant, name=name)
    _err.print(
        f"created key {info.id} for tenant {info.tenant}; it is shown once, store it now:",
        markup=False,
        highlight=False,
    )
    sys.stdout.write(raw_key + "\n")


@keys_app.command("list")
def list_(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    db: DbOption = None,
) -> None:
    """List API keys (ids, tenants, names, dates; never the keys)."""
    from auditor.services.keys import list_keys

    keys = list_keys(open_store(db), tenant=tenant)
    if as_json:
        for key in keys:
            sys.stdout.write(json.dumps(key.model_dump(mode="json")) + "\n")
        return
    from rich.table import Table

    table = Table(title="API keys")
    for column in ("id", "tenant", "name", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key.id,
            key.tenant,
            key.name or "",
            key.created_at.isoformat(timespec="seconds"),
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    lazy_console().print(table)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="Key id (from `auditor keys list`).")],
    db: DbOption = None,
) -> None:
    """Revoke an API key; requests with it are refused from now on."""
    from auditor.services.keys import revoke_key

    if not revoke_key(open_store(db), key_id):
        _err.print(f"error: no active key {key_id!r}", markup=False, highlight=False)
        raise typer.Exit(EXIT_NOT_FOUND)
    _err.print(f"revoked key {key_id}", markup=False, highlight=False)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="TCP port.")] = DEFAULT_PORT,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the REST API (uvicorn; configuration from AUDITOR_* environment variables)."""
    import uvicorn

    uvicorn.run(
        "auditor.api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )
