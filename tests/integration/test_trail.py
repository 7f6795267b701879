"""The audit trail (auditor.services.trail): a hash chain whose every edit, rewrite, deletion or
truncation `auditor trail verify` names exactly. References: SHA-256 recomputed here with
hashlib over the canonical JSON the module documents; tampering done with plain SQL on the
stored rows, as someone with database access would."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from auditor.cli import app as cli_app
from auditor.ecosystem import Ecosystem, EcosystemConfig
from auditor.schemas.bundle import Bundle
from auditor.schemas.spec import parse_spec
from auditor.services.audits import submit_audit
from auditor.services.keys import create_key, revoke_key
from auditor.services.trail import (
    GENESIS_HASH,
    EventRecord,
    acting_as,
    audit_sha256,
    list_events,
    record_event,
    verify_chain,
    verify_store,
)
from auditor.storage.store import Store

runner = CliRunner()


@pytest.fixture
def store(database_url: str) -> Store:
    store = Store(database_url)
    store.migrate()
    return store


def append_some(store: Store, n: int, tenant: str = "acme") -> list[EventRecord]:
    return [
        record_event(
            store,
            tenant=tenant,
            action="audit.started",
            object_type="audit",
            object_id=f"audit-{k}",
            object_sha256=hashlib.sha256(f"result {k}".encode()).hexdigest(),
            detail={"status": "succeeded", "cost_usd": 0.25 * k},
        )
        for k in range(n)
    ]


def stored_rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM trail_events ORDER BY seq")).mappings()
        return [dict(row) for row in rows]


def reference_hash(row: dict[str, Any]) -> str:
    """The module's documented recipe, recomputed independently."""
    content = {k: row[k] for k in row if k != "hash"}
    if isinstance(content["detail"], str):  # a JSON column may read back as text
        content["detail"] = json.loads(content["detail"])
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def world_bundle(seed: int = 2) -> Bundle:
    config = EcosystemConfig(seed=seed, n_items=10, judges=["atlas-1"])
    return Ecosystem(config).bundle()


def verify_cli(url: str) -> tuple[int, list[str]]:
    result = runner.invoke(cli_app, ["trail", "verify", "--db", url])
    return result.exit_code, result.stdout.splitlines()


def test_entries_chain_by_hash_and_verify(store: Store) -> None:
    events = append_some(store, 5)
    rows = stored_rows(store)
    assert [row["seq"] for row in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == GENESIS_HASH
    for previous, row in zip([None, *rows], rows, strict=False):
        assert row["hash"] == reference_hash(row)
        if previous is not None:
            assert row["prev_hash"] == previous["hash"]
    assert [e.hash for e in events] == [row["hash"] for row in rows]
    report = verify_store(store)
    assert report.ok and report.n_entries == 5 and report.last_hash == rows[-1]["hash"]
    code, lines = verify_cli(store.url)
    assert code == 0
    assert lines == [f"trail intact: 5 entries; head 5 {rows[-1]['hash']}"]


def test_an_edited_byte_is_named_with_its_entry(store: Store) -> None:
    append_some(store, 5)
    with store.engine.begin() as connection:  # one character of one field of entry 3
        connection.execute(text("UPDATE trail_events SET object_id = 'audit-9' WHERE seq = 3"))
    row = stored_rows(store)[2]
    code, lines = verify_cli(store.url)
    assert code == 1
    assert lines == [
        f"entry 3 (audit.started audit audit-9): its content does not match its stored hash "
        f"(stored {row['hash'][:16]}…, content hashes to {reference_hash(row)[:16]}…): the "
        "entry was edited after it was written",
        "trail BROKEN: 1 problem(s) in 5 entries",
    ]


def test_an_edited_detail_value_is_detected(store: Store) -> None:
    append_some(store, 3)
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE trail_events SET detail = :d WHERE seq = 2"),
            {"d": json.dumps({"status": "succeeded", "cost_usd": 0.0})},
        )
    report = verify_store(store)
    assert [(p.seq, p.kind) for p in report.problems] == [(2, "edited")]


def test_a_rewritten_entry_with_a_recomputed_hash_breaks_the_next_link(store: Store) -> None:
    append_some(store, 4)
    row = stored_rows(store)[1]  # entry 2, rewritten consistently: its own hash matches
    row["actor"] = "mallory"
    forged = reference_hash(row)
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE trail_events SET actor = 'mallory', hash = :h WHERE seq = 2"),
            {"h": forged},
        )
    original_next = stored_rows(store)[2]["prev_hash"]
    code, lines = verify_cli(store.url)
    assert code == 1
    assert lines[0] == (
        f"entry 3 (audit.started audit audit-2): prev_hash {original_next[:16]}… is not the "
        f"hash of entry 2 ({forged[:16]}…): entry 2 was rewritten or replaced"
    )


def test_a_deleted_entry_leaves_a_named_gap(store: Store) -> None:
    append_some(store, 5)
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM trail_events WHERE seq = 2"))
    code, lines = verify_cli(store.url)
    assert code == 1
    assert lines[0] == "entry 2 is missing before entry 3 (deleted)"


def test_entries_deleted_from_the_end_disagree_with_the_head(store: Store) -> None:
    events = append_some(store, 5)
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM trail_events WHERE seq >= 4"))
    code, lines = verify_cli(store.url)
    assert code == 1
    assert lines[0] == (
        f"the chain head records 5 entries (last hash {events[-1].hash[:16]}…) but the last "
        "entry is 3: entries 4 to 5 were deleted from the end"
    )


def test_verify_chain_is_pure_and_reports_every_break() -> None:
    first = EventRecord(
        seq=1,
        at="2026-01-01T00:00:00.000000Z",
        tenant="t",
        actor="a",
        action="x",
        object_type="o",
        object_id="1",
        object_sha256=None,
        detail={},
        prev_hash=GENESIS_HASH,
        hash="",
    )
    first = first.model_copy(update={"hash": reference_hash(first.model_dump())})
    assert verify_chain([first], (1, first.hash)).ok
    assert verify_chain([], (0, GENESIS_HASH)).ok
    broken = verify_chain([first, first], None)
    assert [p.kind for p in broken.problems] == ["out_of_order"]


def test_concurrent_appends_keep_one_contiguous_chain(postgres_url: str) -> None:
    store = Store(postgres_url)
    store.migrate()
    before = verify_store(store).last_seq

    def work(k: int) -> None:
        append_some(Store(postgres_url), 25, tenant=f"tenant{k}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = verify_store(store)
    assert report.ok, report.problems
    assert report.last_seq == before + 100


def test_every_action_of_the_services_is_recorded_with_actor_and_object_hash(
    store: Store, tmp_path: Path
) -> None:
    with acting_as("cli:alice"):
        info, _ = create_key(store, tenant="acme")
        evaluation_id = store.add_evaluation(world_bundle(), tenant="acme", name="w")
        spec = parse_spec(
            {
                "evaluation_id": evaluation_id,
                "judges": [{"model": "openai/gpt-4o-mini", "name": "j"}],
            }
        )
    with acting_as(info.id):
        audit, _ = submit_audit(store, spec, tenant="acme")
        store.cancel_audit(audit.id, tenant="acme")
        assert revoke_key(store, info.id)
        other = store.add_evaluation(world_bundle(seed=3), tenant="acme")
        assert store.delete_evaluation(other, tenant="acme")
    events = list_events(store, tenant="acme", limit=100)
    assert [(e.action, e.actor) for e in events] == [
        ("key.created", "cli:alice"),
        ("evaluation.submitted", "cli:alice"),
        ("audit.started", info.id),
        ("audit.cancelled", info.id),
        ("key.revoked", info.id),
        ("evaluation.submitted", info.id),
        ("evaluation.deleted", info.id),
    ]
    evaluation = store.get_evaluation(evaluation_id)
    assert evaluation is not None and events[1].object_sha256 == evaluation.sha256
    cancelled = store.get_audit(audit.id)
    assert events[2].object_sha256 == audit_sha256(cancelled) == events[3].object_sha256
    assert all(e.tenant == "acme" for e in events)
    assert list_events(store, tenant="globex") == []
    assert verify_store(store).ok


def test_a_stored_result_changed_after_its_audit_finished_is_named(store: Store) -> None:
    from auditor.services.governance import audit_finished

    audit, _ = store.create_audit(
        {"name": "a"}, tenant="acme", name="a", evaluation_id=None, budget_usd=None
    )
    store.save_result(audit.id, {"judges": [{"judge": "j", "partial_r": 0.52}]})
    store.update_audit(audit.id, status="succeeded", stage="done")
    assert audit_finished(store, audit.id) == []
    recorded = list_events(store, tenant="acme", action="audit.finished")[0]
    assert verify_cli(store.url)[0] == 0
    with store.engine.begin() as connection:  # 0.52 -> 0.12: one character of the stored JSON
        connection.execute(
            text("UPDATE results SET report = :r WHERE audit_id = :a"),
            {"r": json.dumps({"judges": [{"judge": "j", "partial_r": 0.12}]}), "a": audit.id},
        )
    changed = hashlib.sha256(
        json.dumps(
            {"judges": [{"judge": "j", "partial_r": 0.12}]}, sort_keys=True, separators=(",", ":")
        ).encode()
    ).hexdigest()
    code, lines = verify_cli(store.url)
    assert code == 1
    assert lines == [
        f"result of audit {audit.id}: the stored result hashes to {changed} but entry "
        f"{recorded.seq} recorded {recorded.object_sha256} when the audit finished (the result "
        "was changed afterwards)",
        f"trail BROKEN: 1 problem(s) in {recorded.seq} entries",
    ]


def test_the_api_lists_a_tenants_events_page_by_page(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from auditor.api import create_app
    from tests.support.settings import make_settings

    app = create_app(
        make_settings(
            database_url=f"sqlite:///{tmp_path / 'api.sqlite'}", broker_url="redis://127.0.0.1:1/0"
        )
    )
    store: Store = app.state.store
    info, key = create_key(store, tenant="acme")
    create_key(store, tenant="globex")
    for k in range(5):
        record_event(store, tenant="acme", action="test.event", object_type="x", object_id=str(k))
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {key}"}
        first = client.get("/v1/events", params={"limit": 4}, headers=auth).json()
        assert [e["action"] for e in first["items"]] == ["key.created"] + ["test.event"] * 3
        assert first["items"][0]["object_id"] == info.id
        second = client.get(first["next"], headers=auth).json()
        assert [e["object_id"] for e in second["items"]] == ["3", "4"]
        assert second["next"] is None
        seqs = [e["seq"] for e in first["items"] + second["items"]]
        assert seqs == sorted(seqs) and 2 not in seqs  # entry 2 is globex's key
        only = client.get("/v1/events", params={"object_id": "4"}, headers=auth).json()
        assert [e["object_id"] for e in only["items"]] == ["4"]
        assert client.get("/v1/events").status_code == 401


# --- the stored spec and calls against the trail (issue 14.6) -----------------------------------

CALL_FIELDS = ", ".join(
    f"calls.{name}"
    for name in [
        "key",
        "tenant",
        "stage",
        "model",
        "item",
        "candidate",
        "request",
        "status",
        "text",
        "parsed",
        "error",
        "provider_model",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
    ]
)


def reference_calls_sha256(store: Store, audit_id: str, cutoff: str) -> tuple[str, int]:
    """The documented recipe, recomputed from plain SQL rows: SHA-256 over one canonical JSON
    line per finished call written by the cutoff, in key order."""
    query = text(
        f"SELECT {CALL_FIELDS} FROM calls JOIN audit_calls ON audit_calls.key = calls.key "
        "WHERE audit_calls.audit_id = :a AND calls.status = 'done' AND calls.updated_at <= :c "
        "ORDER BY calls.key"
    )
    digest = hashlib.sha256()
    with store.engine.connect() as connection:
        rows = connection.execute(
            query, {"a": audit_id, "c": datetime.fromisoformat(cutoff)}
        ).mappings()
        count = 0
        for row in rows:
            document = dict(row)
            for name in ("request", "parsed"):  # a JSON column may read back as text
                if isinstance(document[name], str):
                    document[name] = json.loads(document[name])
            line = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
            digest.update(line.encode("ascii") + b"\n")
            count += 1
    return digest.hexdigest(), count


def finished_audit(store: Store) -> str:
    """An audit with a planted setting in its spec, an answer, two judge replies and a call
    that failed, finished and recorded as a worker does."""
    from auditor.services.governance import audit_finished, record_audit_started
    from auditor.storage.store import CallResult, PlannedCall

    spec = {"name": "a", "simulation": {"judge_affinity": {"atlas-1": 0.3}}}
    audit, _ = store.create_audit(
        spec, tenant="acme", name="a", evaluation_id=None, budget_usd=None
    )
    record_audit_started(store, audit)
    calls = [
        PlannedCall("k-answer", "answer", "sim/b", "q1", None, {"prompt": "2+2?"}),
        PlannedCall("k-judge-1", "judge", "sim/a", "q1", "b", {"prompt": "Grade: 4"}),
        PlannedCall("k-judge-2", "judge", "sim/a", "q2", "b", {"prompt": "Grade: 5 é"}),
        PlannedCall("k-judge-3", "judge", "sim/a", "q3", "b", {"prompt": "Grade: 6"}),
    ]
    store.plan_calls(audit.id, "acme", calls)
    store.record_results(
        [
            CallResult("k-answer", "done", text="4", parsed={"answer": "4"}, cost_usd=0.002),
            CallResult("k-judge-1", "done", text="1", parsed={"verdict": 1}, cost_usd=0.001),
            CallResult("k-judge-2", "done", text="0", parsed={"verdict": 0, "p1": 0.125}),
            CallResult("k-judge-3", "failed", error="exhausted retries"),
        ]
    )
    store.save_result(audit.id, {"judges": [{"judge": "a", "partial_r": 0.52}]})
    store.update_audit(audit.id, status="succeeded", stage="done")
    assert audit_finished(store, audit.id) == []
    return audit.id


def test_the_finished_calls_are_recorded_by_the_documented_recipe(store: Store) -> None:
    audit_id = finished_audit(store)
    recorded = list_events(store, tenant="acme", action="audit.finished")[0]
    cutoff = recorded.detail["calls_cutoff"]
    assert (recorded.detail["calls_sha256"], recorded.detail["calls"]) == (
        reference_calls_sha256(store, audit_id, cutoff)
    )
    assert recorded.detail["calls"] == 3  # the failed call is not a finished one
    assert verify_cli(store.url) == (
        0,
        [f"trail intact: {recorded.seq} entries; head {recorded.seq} {recorded.hash}"],
    )


def test_a_judge_reply_edited_in_a_stored_call_is_named(store: Store) -> None:
    audit_id = finished_audit(store)
    recorded = list_events(store, tenant="acme", action="audit.finished")[0]
    with store.engine.begin() as connection:  # the judge's 0 becomes a 1
        connection.execute(
            text("UPDATE calls SET text = '1', parsed = :p WHERE key = 'k-judge-2'"),
            {"p": json.dumps({"verdict": 1, "p1": 0.125})},
        )
    found, count = reference_calls_sha256(store, audit_id, recorded.detail["calls_cutoff"])
    assert count == 3 and found != recorded.detail["calls_sha256"]
    code, lines = verify_cli(store.url)
    assert code == 1
    assert lines == [
        f"calls of audit {audit_id}: the 3 finished calls are stored but differ when the audit "
        f"finished: they hash to {found} but entry {recorded.seq} recorded "
        f"{recorded.detail['calls_sha256']} (a stored reply or call was changed afterwards)",
        f"trail BROKEN: 1 problem(s) in {recorded.seq} entries",
    ]


def test_a_finished_call_moved_out_of_the_audit_is_named(store: Store) -> None:
    audit_id = finished_audit(store)
    with store.engine.begin() as connection:  # hide a reply: written "later", or "failed"
        connection.execute(
            text("UPDATE calls SET updated_at = :t WHERE key = 'k-judge-1'"),
            {"t": "2999-01-01 00:00:00.000000"},
        )
        connection.execute(text("UPDATE calls SET status = 'failed' WHERE key = 'k-answer'"))
    code, lines = verify_cli(store.url)
    assert code == 1
    assert lines[0].startswith(
        f"calls of audit {audit_id}: 1 finished calls are stored where 3 were when the audit "
        "finished"
    )


def test_a_call_that_succeeds_in_a_later_run_leaves_the_earlier_audit_intact(
    store: Store,
) -> None:
    from auditor.storage.store import CallResult

    finished_audit(store)
    with store.engine.begin() as connection:  # a re-run sends the call that ran out of retries
        connection.execute(text("UPDATE calls SET status = 'pending' WHERE key = 'k-judge-3'"))
    store.record_results([CallResult("k-judge-3", "done", text="1", parsed={"verdict": 1})])
    report = verify_store(store)
    assert report.ok
    assert verify_cli(store.url)[0] == 0


def test_a_planted_setting_edited_in_a_stored_spec_is_named(store: Store) -> None:
    audit_id = finished_audit(store)
    started = list_events(store, tenant="acme", action="audit.started")[0]
    planted = {"name": "a", "simulation": {"judge_affinity": {"atlas-1": 0.0}}}
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE audits SET spec = :s WHERE id = :a"),
            {"s": json.dumps(planted), "a": audit_id},
        )
    found = hashlib.sha256(
        json.dumps(
            {"id": audit_id, "tenant": "acme", "spec": planted, "evaluation_id": None},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
    ).hexdigest()
    code, lines = verify_cli(store.url)
    assert code == 1
    assert lines[:1] == [
        f"audit {audit_id}: its stored spec, tenant or evaluation hash to {found} but entry "
        f"{started.seq} recorded {started.object_sha256} when the audit started (the stored "
        "audit was changed afterwards)"
    ]
    assert lines[-1].startswith("trail BROKEN: 1 problem(s)")


def test_a_judge_reply_edited_after_a_real_run_is_named(tmp_path: Path) -> None:
    """Through the worker's path: an audit run to its end, then one stored judge reply flipped."""
    from tests.support.pipeline import run_audit
    from tests.support.specs import small_spec

    url = f"sqlite:///{tmp_path / 'run.sqlite'}"
    store, audit_id = run_audit(url, small_spec(n_items=12, sizes=2))
    assert store.get_audit(audit_id).status == "succeeded"  # type: ignore[union-attr]
    assert verify_cli(url)[0] == 0
    judged = [c for c in store.calls_of(audit_id, stage="judge") if c.status == "done"]
    recorded = list_events(store, tenant="t1", action="audit.finished")[0]
    assert recorded.detail["calls"] >= len(judged) > 0
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE calls SET text = :t WHERE key = :k"),
            {"t": (judged[0].text or "") + " ", "k": judged[0].key},
        )
    code, lines = verify_cli(url)
    assert code == 1
    assert lines[0].startswith(f"calls of audit {audit_id}: the ")
    assert lines[-1].startswith("trail BROKEN: 1 problem(s)")
