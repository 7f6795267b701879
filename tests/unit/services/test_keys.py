"""API keys and tenants (auditor.services.keys, `auditor keys`): hashes only, shown once,
revocable."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from auditor.cli import app as cli_app
from auditor.services.keys import (
    authenticate,
    create_key,
    list_keys,
    revoke_key,
    validate_tenant,
)
from auditor.storage.store import Store
from auditor.storage.tables import ApiKeyRow, TenantRow


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'auth.sqlite'}")
    store.migrate()
    return store


def test_a_key_names_its_id_and_only_its_hash_is_stored(store: Store) -> None:
    info, raw_key = create_key(store, tenant="acme", name="ci")
    prefix, key_id, secret = raw_key.split("_", 2)
    assert (prefix, key_id) == ("ja", info.id)
    assert len(secret) >= 40  # 32 random bytes, base64
    with store.session() as session:
        row = session.scalars(select(ApiKeyRow)).one()
        stored_values = [str(getattr(row, c.key)) for c in ApiKeyRow.__table__.columns]
        assert session.get(TenantRow, "acme") is not None
    assert row.key_sha256 == hashlib.sha256(raw_key.encode()).hexdigest()
    assert not any(secret in value for value in stored_values)


def test_authenticate_accepts_the_key_and_nothing_like_it(store: Store) -> None:
    info, raw_key = create_key(store, tenant="acme")
    principal = authenticate(store, raw_key)
    assert principal is not None and (principal.tenant, principal.key_id) == ("acme", info.id)
    tampered = raw_key[:-1] + ("A" if raw_key[-1] != "A" else "B")
    other_id = "ja_000000000000_" + raw_key.split("_", 2)[2]
    for wrong in (tampered, other_id, raw_key + "x", "", "Bearer " + raw_key, "ja_x_y"):
        assert authenticate(store, wrong) is None, wrong


def test_revoked_keys_are_refused_at_once_and_others_keep_working(store: Store) -> None:
    first, first_key = create_key(store, tenant="acme")
    _, second_key = create_key(store, tenant="acme")
    assert revoke_key(store, first.id) is True
    assert authenticate(store, first_key) is None
    assert authenticate(store, second_key) is not None
    assert revoke_key(store, first.id) is False  # already revoked
    assert revoke_key(store, "000000000000") is False
    listed = {key.id: key for key in list_keys(store)}
    assert listed[first.id].revoked_at is not None


def test_keys_are_listed_per_tenant(store: Store) -> None:
    a, _ = create_key(store, tenant="acme", name="one")
    b, _ = create_key(store, tenant="globex", name="two")
    assert [k.id for k in list_keys(store, tenant="acme")] == [a.id]
    assert {k.id for k in list_keys(store)} == {a.id, b.id}


@pytest.mark.parametrize("tenant", ["", " acme", "a/b", "x" * 65, "-lead", "ünïcode"])
def test_invalid_tenant_names_are_refused(store: Store, tenant: str) -> None:
    with pytest.raises(ValueError, match="tenant"):
        validate_tenant(tenant)
    with pytest.raises(ValueError, match="tenant"):
        create_key(store, tenant=tenant)


def test_cli_creates_lists_and_revokes_keys(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    runner = CliRunner()
    created = runner.invoke(
        cli_app, ["keys", "create", "--tenant", "acme", "--name", "ci", "--db", db]
    )
    assert created.exit_code == 0, created.output
    raw_key = created.stdout.strip().splitlines()[-1]
    assert raw_key.startswith("ja_")
    store = Store(db)
    assert authenticate(store, raw_key) is not None

    listed = runner.invoke(cli_app, ["keys", "list", "--json", "--db", db])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["tenant"], r["name"], r["revoked_at"]) for r in rows] == [("acme", "ci", None)]
    assert raw_key not in listed.stdout  # the key itself is shown once only

    table = runner.invoke(cli_app, ["keys", "list", "--tenant", "acme", "--db", db])
    assert table.exit_code == 0 and rows[0]["id"] in table.stdout

    revoked = runner.invoke(cli_app, ["keys", "revoke", rows[0]["id"], "--db", db])
    assert revoked.exit_code == 0, revoked.output
    assert authenticate(store, raw_key) is None
    again = runner.invoke(cli_app, ["keys", "revoke", rows[0]["id"], "--db", db])
    assert again.exit_code == 1

    bad = runner.invoke(cli_app, ["keys", "create", "--tenant", "no spaces", "--db", db])
    assert bad.exit_code == 2
