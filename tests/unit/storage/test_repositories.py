"""The storage repositories' unit of work (auditor.storage.store.Store.transaction) and the
compare-and-set claims, on a SQLite store: an action and its trail entry commit together or
not at all; a claim is taken once."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from auditor.services.trail import append_event, list_events
from auditor.storage.repositories import keys as key_rows
from auditor.storage.repositories import schedules as schedule_rows
from auditor.storage.store import Store, utcnow
from auditor.storage.tables import ScheduleRow


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'repositories.sqlite'}")
    store.migrate()
    return store


def _add_key(store: Store, key_id: str, *, fail_after_trail: bool) -> None:
    with store.transaction() as session:
        key_rows.add_key(
            session, key_id=key_id, tenant="acme", name=None, key_sha256="0" * 64, now=utcnow()
        )
        append_event(
            session, tenant="acme", action="key.created", object_type="api_key", object_id=key_id
        )
        if fail_after_trail:
            raise RuntimeError("planted failure after both writes")


def test_a_unit_of_work_commits_the_action_and_its_trail_entry_together(store: Store) -> None:
    _add_key(store, "aaaaaaaaaaaa", fail_after_trail=False)
    assert [row.id for row in key_rows.list_keys(store, tenant="acme")] == ["aaaaaaaaaaaa"]
    assert [event.object_id for event in list_events(store, tenant="acme")] == ["aaaaaaaaaaaa"]


def test_a_failed_unit_of_work_leaves_neither_the_action_nor_its_trail_entry(
    store: Store,
) -> None:
    with pytest.raises(RuntimeError, match="planted failure"):
        _add_key(store, "bbbbbbbbbbbb", fail_after_trail=True)
    assert key_rows.list_keys(store) == []
    assert key_rows.get_key(store, "bbbbbbbbbbbb") is None
    assert list_events(store, tenant=None) == []
    # The chain head was not advanced either: the next entry is number 1.
    _add_key(store, "cccccccccccc", fail_after_trail=False)
    assert [event.seq for event in list_events(store, tenant=None)] == [1]


def test_revoking_twice_names_the_tenant_once(store: Store) -> None:
    _add_key(store, "dddddddddddd", fail_after_trail=False)
    with store.transaction() as session:
        assert key_rows.revoke_key(session, "dddddddddddd", at=utcnow()) == "acme"
    with store.transaction() as session:
        assert key_rows.revoke_key(session, "dddddddddddd", at=utcnow()) is None
        assert key_rows.revoke_key(session, "no-such-key", at=utcnow()) is None


def _schedule(store: Store, *, due: datetime) -> ScheduleRow:
    row = ScheduleRow(
        id="s1",
        schema_version=1,
        tenant="acme",
        name="nightly",
        spec={},
        cron="0 3 * * *",
        timezone="UTC",
        paused=False,
        webhook_url=None,
        webhook_secret=None,
        notify={},
        baseline_audit_id=None,
        next_due_at=due,
        last_slot_at=None,
        version=0,
        created_at=due,
        updated_at=due,
        deleted_at=None,
    )
    with store.transaction() as session:
        schedule_rows.add_schedule(session, row)
    return row


def test_a_slot_read_by_two_schedulers_is_claimed_once(store: Store) -> None:
    slot = datetime(2026, 1, 1, 3)
    seen_by_first = _schedule(store, due=slot)
    seen_by_second = schedule_rows.get_schedule(store, "s1")
    assert seen_by_second is not None and seen_by_second.version == seen_by_first.version == 0
    following = datetime(2026, 1, 2, 3)
    run = schedule_rows.claim_slot(
        store, seen_by_first, slot=slot, next_due_at=following, missed_slots=0
    )
    assert run is not None and (run.slot_at, run.state) == (slot, "claimed")
    lost = schedule_rows.claim_slot(
        store, seen_by_second, slot=slot, next_due_at=following, missed_slots=0
    )
    assert lost is None
    stored = schedule_rows.get_schedule(store, "s1")
    assert stored is not None
    assert (stored.version, stored.next_due_at, stored.last_slot_at) == (1, following, slot)
    assert [r.id for r in schedule_rows.runs_of(store, "s1", limit=10, newest_first=False)] == [
        run.id
    ]
