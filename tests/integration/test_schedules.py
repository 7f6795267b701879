"""Schedules (auditor.services.schedules, auditor.services.governance, the schedules API and CLI).

References: cron slots worked out by hand (with the zone's UTC offsets, including both
daylight-saving changes); the claim's compare-and-set raced by threads on PostgreSQL; whole
scheduled runs in process (Celery eager) on a simulated world whose planted affinity changes
between runs, with the simulated provider's ledger as the record of every call made."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import reports
from auditor.api import create_app
from auditor.api.deps import get_dispatcher
from auditor.cli import app as cli_app
from auditor.schemas.result import AffinityReport
from auditor.schemas.spec import parse_spec
from auditor.services import schedules
from auditor.services.governance import start_due_runs, validate_timing
from auditor.services.keys import create_key
from auditor.services.schedules import decide, next_slot, slots_between
from auditor.services.trail import acting_as, list_events, verify_store
from auditor.settings import Settings
from auditor.storage.store import Store, utcnow
from auditor.storage.tables import ScheduleRow
from tests.support.api import RecordingDispatcher, evaluation_spec, world_bundle
from tests.support.settings import make_settings
from tests.support.specs import small_spec
from tests.support.webhooks import Receiver, assert_signed

runner = CliRunner()
HOURLY = "0 * * * *"


# --- timing (pure) ------------------------------------------------------------------------------


def test_slots_are_read_in_the_schedules_time_zone() -> None:
    # 06:00 in Berlin is 05:00 UTC in winter (CET, +1) and 04:00 UTC in summer (CEST, +2)
    assert next_slot("0 6 * * *", "Europe/Berlin", datetime(2026, 1, 5, 12)) == datetime(
        2026, 1, 6, 5
    )
    assert next_slot("0 6 * * *", "Europe/Berlin", datetime(2026, 7, 5, 12)) == datetime(
        2026, 7, 6, 4
    )
    assert next_slot("0 9 * * 1", "America/New_York", datetime(2026, 1, 1)) == datetime(
        2026, 1, 5, 14
    )  # the first Monday, 09:00 EST (-5)
    # six fields: seconds last
    assert next_slot("* * * * * */20", "UTC", datetime(2026, 1, 1, 0, 0, 5)) == datetime(
        2026, 1, 1, 0, 0, 20
    )


def test_daylight_saving_gaps_run_after_the_gap_and_repeats_run_once() -> None:
    # 29 March 2026, Berlin: 02:00 -> 03:00. 02:30 does not exist: it runs at 03:00 CEST.
    assert next_slot("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12)) == datetime(
        2026, 3, 29, 1, 0
    )
    # 25 October 2026, Berlin: 03:00 -> 02:00. 02:30 happens twice; a fixed time runs once.
    _, count = slots_between(
        "30 2 * * *", "Europe/Berlin", datetime(2026, 10, 25, 0, 30), datetime(2026, 10, 25, 23)
    )
    assert count == 1
    assert next_slot("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 25, 0, 30)) == datetime(
        2026, 10, 26, 1, 30
    )
    # ... while an every-30-minutes schedule runs in both copies of the repeated hour
    _, count = slots_between(
        "*/30 * * * *", "Europe/Berlin", datetime(2026, 10, 25, 0, 0), datetime(2026, 10, 25, 1, 59)
    )
    assert count == 4  # 02:00, 02:30 CEST and 02:00, 02:30 CET


def test_decide_runs_the_latest_missed_slot_once_and_waits_for_a_running_run() -> None:
    due = datetime(2026, 1, 1, 1, 0)
    common: dict[str, Any] = {"cron": HOURLY, "timezone": "UTC", "next_due_at": due}
    assert (
        decide(
            paused=False, previous_run_active=False, now=due - timedelta(seconds=1), **common
        ).action
        == "wait"
    )
    assert decide(paused=True, previous_run_active=False, now=due, **common).action == "paused"
    blocked = decide(paused=False, previous_run_active=True, now=due + timedelta(hours=5), **common)
    assert (blocked.action, blocked.next_due_at) == ("blocked", due)  # the slot waits
    on_time = decide(paused=False, previous_run_active=False, now=due, **common)
    assert (on_time.action, on_time.slot, on_time.missed_slots) == ("run", due, 0)
    assert on_time.next_due_at == datetime(2026, 1, 1, 2, 0)
    # beat was down from 01:00 to 04:30: one run for 04:00 that stands for 01:00..03:00 too
    late = decide(
        paused=False, previous_run_active=False, now=datetime(2026, 1, 1, 4, 30), **common
    )
    assert (late.slot, late.missed_slots, late.next_due_at) == (
        datetime(2026, 1, 1, 4, 0),
        3,
        datetime(2026, 1, 1, 5, 0),
    )


def test_invalid_timing_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="cron: must be 5 fields"):
        schedules.validate_cron("every day")
    with pytest.raises(ValueError, match="timezone: not an IANA time zone name"):
        schedules.validate_timezone("Mars/Olympus")
    with pytest.raises(ValueError, match="no more frequent than every 60 s"):
        validate_timing("* * * * * */5", "UTC", min_interval=60)
    assert validate_timing("  0   6 * * *", "UTC", min_interval=60) == "0 6 * * *"


# --- storage ------------------------------------------------------------------------------------


@pytest.fixture
def store(database_url: str) -> Store:
    store = Store(database_url)
    store.migrate()
    return store


def new_schedule(store: Store, **kwargs: Any) -> ScheduleRow:
    return schedules.create_schedule(
        store,
        tenant="acme",
        name="hourly",
        spec={"name": "x"},
        cron=HOURLY,
        now=kwargs.pop("now", datetime(2026, 1, 1, 0, 10)),
        **kwargs,
    )


def test_a_due_schedule_is_claimed_once_for_its_latest_slot(store: Store) -> None:
    schedule = new_schedule(store)
    assert schedule.next_due_at == datetime(2026, 1, 1, 1, 0)
    claimed, _ = schedules.claim_due(store, now=datetime(2026, 1, 1, 0, 59))
    assert claimed == []
    claimed, decisions = schedules.claim_due(store, now=datetime(2026, 1, 1, 3, 5))
    assert [(r.slot_at, r.missed_slots, r.state) for r in claimed] == [
        (datetime(2026, 1, 1, 3, 0), 2, "claimed")
    ]
    assert decisions[schedule.id].next_due_at == datetime(2026, 1, 1, 4, 0)
    # the claimed run has no audit yet: it counts as going, so later slots wait for it
    again, decisions = schedules.claim_due(store, now=datetime(2026, 1, 1, 5, 5))
    assert again == [] and decisions[schedule.id].action == "blocked"


def test_two_schedulers_racing_claim_a_slot_once(postgres_url: str) -> None:
    store = Store(postgres_url)
    store.migrate()
    schedule = new_schedule(store)
    barrier = threading.Barrier(6)
    results: list[int] = []

    def claim() -> None:
        barrier.wait()
        claimed, _ = schedules.claim_due(Store(postgres_url), now=datetime(2026, 1, 1, 1, 1))
        results.append(len([r for r in claimed if r.schedule_id == schedule.id]))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 0, 0, 0, 0, 1]
    assert len(schedules.runs_of(store, schedule.id)) == 1


def test_paused_slots_are_not_caught_up_and_deleted_schedules_never_run(store: Store) -> None:
    schedule = new_schedule(store)
    with acting_as("key123"):
        schedules.set_paused(store, schedule.id, tenant="acme", paused=True)
    assert schedules.claim_due(store, now=datetime(2026, 1, 1, 5, 5))[0] == []
    resumed = schedules.set_paused(
        store, schedule.id, tenant="acme", paused=False, now=datetime(2026, 1, 1, 5, 5)
    )
    assert resumed is not None and resumed.next_due_at == datetime(2026, 1, 1, 6, 0)
    assert schedules.claim_due(store, now=datetime(2026, 1, 1, 5, 30))[0] == []
    assert schedules.delete_schedule(store, schedule.id, tenant="acme")
    assert schedules.claim_due(store, now=datetime(2026, 1, 2))[0] == []
    assert schedules.list_schedules(store, tenant="acme") == []
    actions = [(e.action, e.actor) for e in list_events(store, tenant="acme")]
    assert actions == [
        ("schedule.created", "system"),
        ("schedule.paused", "key123"),
        ("schedule.resumed", "system"),
        ("schedule.deleted", "system"),
    ]
    assert verify_store(store).ok


# --- whole scheduled runs in process ------------------------------------------------------------


@pytest.fixture
def eager(tmp_path: Path) -> Iterator[tuple[Store, Settings]]:
    """Scheduled runs in this process (`workers.local`: an in-process worker)."""
    from workers.app import configure

    url = f"sqlite:///{tmp_path / 'scheduled.sqlite'}"
    store = Store(url)
    store.migrate()
    settings = make_settings(
        database_url=url,
        batch_size=64,
        retry_base_delay=0.001,
        webhook_allow_private=True,
        drift_bootstrap=1000,
    )
    yield store, settings
    configure()


def planted_spec(affinity: float, ledger: Path) -> dict[str, Any]:
    # 5 models in each of 3 families, 20 items, shared traps: atlas-1 is flagged at s = 0.8, not
    # at s = 0. Its p is adjusted across judges x probes (12 tests here); with 4 models a family
    # and weaker traps (2.5) the planted r of ~0.8 gave p = 0.006, 0.07 adjusted, unflagged.
    return parse_spec(
        small_spec(
            seed=9,
            n_items=20,
            sizes=5,
            trap_strength=4.0,
            affinity={"atlas-1": affinity},
            provider={"ledger": str(ledger)},
        )
    ).public_dict()


def run_slot(store: Store, settings: Settings, now: datetime) -> str:
    from workers.local import run_local

    audit_ids = start_due_runs(store, now=now)
    assert len(audit_ids) == 1
    run_local(settings, audit_ids[0])
    audit = store.get_audit(audit_ids[0])
    assert audit is not None and audit.status == "succeeded", audit.error if audit else None
    return audit_ids[0]


def drift_of(store: Store, audit_id: str) -> dict[str, Any]:
    run = schedules.run_of_audit(store, audit_id)
    assert run is not None and run.drift is not None, run.error if run else None
    return run.drift


def test_scheduled_runs_call_afresh_pin_what_they_used_and_catch_planted_drift(
    eager: tuple[Store, Settings], tmp_path: Path
) -> None:
    store, settings = eager
    ledger = tmp_path / "ledger.txt"
    receiver = Receiver().start()
    try:
        start = utcnow().replace(minute=0, second=0, microsecond=0)
        schedule = schedules.create_schedule(
            store,
            tenant="acme",
            name="hourly audit",
            spec=planted_spec(0.0, ledger),
            cron=HOURLY,
            webhook_url=receiver.url,
            webhook_secret="whsec_test-secret-0123456789abcdef",
            now=start,
        )
        calls_per_run = 15 * 20 * 2 + 3 * 14 * 20  # MCQ and answers; judges on 14 others
        first = run_slot(store, settings, start + timedelta(hours=1, minutes=1))
        assert len(ledger.read_text().splitlines()) == calls_per_run
        assert drift_of(store, first)["previous"] is None  # nothing to compare with yet
        # the provider updates atlas-1 under the same name: it now favours answers like its own
        schedules.update_schedule(store, schedule.id, tenant="acme", spec=planted_spec(0.8, ledger))
        # beat was down for two slots: one run, for the latest
        second = run_slot(store, settings, start + timedelta(hours=4, minutes=1))
        assert len(ledger.read_text().splitlines()) == 2 * calls_per_run
        drift = drift_of(store, second)
        judges = {j["judge"]: j for j in drift["previous"]["judges"]}
        atlas = judges["atlas-1"]
        assert atlas["flag_change"] == "appeared" and atlas["significant"]
        assert atlas["delta"] > 0.5 and atlas["ci95"][0] > 0
        assert 0.1 < atlas["flip_rate"] < 0.6 and atlas["accuracy_delta"] == 0.0
        for name in ("boreal-1", "cygnus-1"):
            assert judges[name]["delta"] == 0.0 and judges[name]["n_verdict_flips"] == 0
        assert drift["baseline_audit_id"] == first and drift["missed_slots"] == 2
        assert sorted((a["judge"], a["reason"]) for a in drift["alerts"]) == [
            ("atlas-1", "effect_grew"),
            ("atlas-1", "flag_appeared"),
        ]  # the baseline is the previous run here: its growth is not reported twice
        assert [p["judges"]["atlas-1"]["flagged"] for p in drift["history"]] == [False, True]
        # the webhook got one signed notification with the two alerts
        assert len(receiver.requests) == 1
        (delivery,) = [d for d in schedules_deliveries(store, schedule.id)]
        payload = assert_signed(receiver.requests[0], delivery.id)
        assert payload["run"]["audit_id"] == second and len(payload["alerts"]) == 2
        assert delivery.status == "delivered"
    finally:
        receiver.stop()
    # pins: what each run used, as the provider reported it
    runs = schedules.runs_of(store, schedule.id)
    pins = [run.pins for run in runs if run.pins is not None]
    assert len(pins) == 2
    assert {m["name"]: m["provider_reported"] for m in pins[0]["models"]}["atlas-1"] == [
        "sim/atlas-1"
    ]
    assert len({p["item_set_sha256"] for p in pins}) == 1  # the same items every time
    assert len({p["call_scope"] for p in pins}) == 2  # each run calls afresh
    assert pins[0]["prompt_templates"] == pins[1]["prompt_templates"]
    assert pins[0]["simulation_sha256"] != pins[1]["simulation_sha256"]
    # the result of a scheduled run carries its drift and pins for the report
    result = AffinityReport.model_validate(store.get_result(second))
    extra = result.provenance.model_extra or {}
    assert extra["scheduled_run"]["run_id"] == runs[1].id
    assert extra["drift"]["alerts"] == drift["alerts"]
    # the main HTML report of a scheduled run has the drift section with the history plot
    main_page = reports.render(result, "html").decode()
    drift_part = main_page[main_page.index('<section id="drift"') :]
    drift_part = drift_part[: drift_part.index("</section>")]
    assert "<svg" in drift_part and "Against the previous run" in drift_part
    assert "atlas-1" in drift_part and "flag_appeared" in drift_part
    # its signed report includes the drift page: the partial-r history as a plot
    out = tmp_path / "report"
    rendered = runner.invoke(
        cli_app,
        ["schedules", "report", second, "--out", str(out), "--format", "json", "--db", store.url],
    )
    assert rendered.exit_code == 0, rendered.output
    page = (out / "report.drift.html").read_text()
    assert "<svg" in page and "Against the previous run" in page and "flag_appeared" in page
    verified = runner.invoke(cli_app, ["verify", str(out / "report.manifest.json")])
    assert verified.exit_code == 0 and "ok: report.drift.html: SHA-256" in verified.stdout
    schedule_row = schedules.get_schedule(store, schedule.id)
    assert schedule_row is not None and schedule_row.baseline_audit_id == first
    events = list_events(store, tenant="acme", limit=100)
    assert [e.actor for e in events if e.action == "audit.started"] == ["system:scheduler"] * 2
    assert [e.actor for e in events if e.action == "audit.finished"] == ["system:worker"] * 2
    assert [e.action for e in events].count("webhook.delivered") == 1
    assert verify_store(store).ok
    # a baseline may name a finished run of this schedule and nothing else
    assert [schedules.run_status(store, run) for run in runs] == ["succeeded", "succeeded"]
    assert schedules.is_finished_run(store, schedule.id, first)
    assert not schedules.is_finished_run(store, new_schedule(store).id, first)
    assert not schedules.is_finished_run(store, schedule.id, "a" * 32)
    # the CLI applies the same rule: another audit is refused (exit 2), a finished run is set
    refused = runner.invoke(
        cli_app, ["schedules", "baseline", schedule.id, "a" * 32, "--db", store.url]
    )
    assert refused.exit_code == 2 and "is not a finished run of schedule" in refused.output
    chosen = runner.invoke(
        cli_app, ["schedules", "baseline", schedule.id, second, "--db", store.url]
    )
    assert chosen.exit_code == 0, chosen.output
    schedule_row = schedules.get_schedule(store, schedule.id)
    assert schedule_row is not None and schedule_row.baseline_audit_id == second


def schedules_deliveries(store: Store, schedule_id: str) -> list[Any]:
    from auditor.services.notifications import deliveries_of

    return deliveries_of(store, schedule_id)


# --- the API and the CLI ------------------------------------------------------------------------


@pytest.fixture
def api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Store, dict]]:
    monkeypatch.setenv("AUDITOR_SCHEDULE_MIN_INTERVAL", "60")
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'api.sqlite'}", broker_url="redis://127.0.0.1:1/0"
    )
    app = create_app(settings)
    app.dependency_overrides[get_dispatcher] = lambda: RecordingDispatcher()
    store: Store = app.state.store
    keys = {tenant: create_key(store, tenant=tenant) for tenant in ("acme", "globex")}
    with TestClient(app) as client:
        yield client, store, {t: {"Authorization": f"Bearer {k[1]}"} for t, k in keys.items()}


def test_schedules_over_the_api(api: tuple[TestClient, Store, dict]) -> None:
    client, _, auth = api
    evaluation = client.post(
        "/v1/evaluations", json=world_bundle().model_dump(mode="json"), headers=auth["acme"]
    ).json()["id"]
    body = {
        "spec": evaluation_spec(evaluation),
        "cron": "0 6 * * 1-5",
        "timezone": "Europe/Berlin",
        "webhook_url": "https://hooks.example.org/audit",
    }
    created = client.post("/v1/schedules", json=body, headers=auth["acme"])
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert created.headers["Location"] == f"/v1/schedules/{schedule['id']}"
    assert schedule["webhook_secret"].startswith("whsec_")  # shown once
    shown = client.get(f"/v1/schedules/{schedule['id']}", headers=auth["acme"]).json()
    assert "webhook_secret" not in shown and shown["timezone"] == "Europe/Berlin"
    assert shown["next_due_at"].endswith(("T05:00:00Z", "T04:00:00Z"))  # 06:00 in Berlin
    # RFC 3339 date-times carry their offset (issue 14: they were naive)
    for field in ("next_due_at", "created_at", "updated_at"):
        assert datetime.fromisoformat(shown[field]).utcoffset() is not None, field
    changed = client.patch(
        f"/v1/schedules/{schedule['id']}", json={"cron": "30 7 * * *"}, headers=auth["acme"]
    )
    assert changed.status_code == 200 and changed.json()["cron"] == "30 7 * * *"
    paused = client.post(f"/v1/schedules/{schedule['id']}/pause", headers=auth["acme"])
    assert paused.json()["paused"] is True
    assert (
        client.post(f"/v1/schedules/{schedule['id']}/resume", headers=auth["acme"]).json()["paused"]
        is False
    )
    listed = client.get("/v1/schedules", headers=auth["acme"]).json()
    assert [s["id"] for s in listed["items"]] == [schedule["id"]] and listed["next"] is None
    assert client.get(f"/v1/schedules/{schedule['id']}/runs", headers=auth["acme"]).json() == {
        "items": []
    }
    baseline = client.put(
        f"/v1/schedules/{schedule['id']}/baseline",
        json={"audit_id": "a" * 32},
        headers=auth["acme"],
    )
    assert baseline.status_code == 422
    assert baseline.json()["problems"][0]["path"] == "audit_id"
    # another tenant sees none of it
    for method, path in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("GET", "/runs"),
        ("GET", "/deliveries"),
        ("PUT", "/baseline"),
    ):
        url = f"/v1/schedules/{schedule['id']}{path}"
        payload = {"audit_id": "a" * 32} if method == "PUT" else ({} if method == "PATCH" else None)
        response = client.request(method, url, json=payload, headers=auth["globex"])
        assert response.status_code == 404, (method, url, response.text)
    assert client.get("/v1/schedules", headers=auth["globex"]).json()["items"] == []
    # every change is in the tenant's audit trail, by the key that made it
    key_id = auth["acme"]["Authorization"].split("_")[1]
    events = client.get(
        "/v1/events", params={"object_id": schedule["id"]}, headers=auth["acme"]
    ).json()
    assert [(e["action"], e["actor"]) for e in events["items"]] == [
        ("schedule.created", key_id),
        ("schedule.updated", key_id),
        ("schedule.paused", key_id),
        ("schedule.resumed", key_id),
    ]
    assert client.delete(f"/v1/schedules/{schedule['id']}", headers=auth["acme"]).status_code == 204
    assert client.get(f"/v1/schedules/{schedule['id']}", headers=auth["acme"]).status_code == 404


def test_invalid_schedules_are_422_with_every_path(api: tuple[TestClient, Store, dict]) -> None:
    client, _, auth = api
    spec = small_spec(n_items=5)
    spec["bundle"] = "/etc/passwd"
    spec.pop("simulation")
    response = client.post(
        "/v1/schedules",
        json={
            "spec": spec,
            "cron": "* * * * * */5",
            "timezone": "UTC",
            "webhook_url": "http://127.0.0.1:8080/internal",
        },
        headers=auth["acme"],
    )
    assert response.status_code == 422
    problems = {p["path"]: p["message"] for p in response.json()["problems"]}
    assert set(problems) == {"spec.bundle", "cron", "webhook_url"}
    assert "no more frequent than every 60 s" in problems["cron"]
    assert "not a public address" in problems["webhook_url"]
    bad_zone = client.post(
        "/v1/schedules",
        json={"spec": small_spec(n_items=5), "cron": "0 6 * * *", "timezone": "Mars/Base"},
        headers=auth["acme"],
    )
    assert [p["path"] for p in bad_zone.json()["problems"]] == ["cron"]


def test_schedules_from_the_command_line(tmp_path: Path) -> None:
    import json

    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(small_spec(n_items=5)))
    created = runner.invoke(
        cli_app,
        ["schedules", "create", str(spec_file), "--cron", "0 6 * * *", "--tz", "UTC", "--db", db],
    )
    assert created.exit_code == 0, created.output
    schedule = json.loads(created.stdout)
    assert schedule["cron"] == "0 6 * * *" and "webhook_secret" not in schedule
    for command in ("pause", "resume"):
        assert (
            runner.invoke(cli_app, ["schedules", command, schedule["id"], "--db", db]).exit_code
            == 0
        )
    listed = runner.invoke(cli_app, ["schedules", "list", "--json", "--db", db])
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [schedule["id"]]
    shown = json.loads(
        runner.invoke(cli_app, ["schedules", "show", schedule["id"], "--db", db]).stdout
    )
    assert shown["runs"] == [] and shown["spec"]["simulation"]["n_items"] == 5
    bad = runner.invoke(
        cli_app, ["schedules", "create", str(spec_file), "--cron", "daily", "--db", db]
    )
    assert bad.exit_code == 2 and "cron: must be 5 fields" in bad.output
    assert (
        runner.invoke(cli_app, ["schedules", "delete", schedule["id"], "--db", db]).exit_code == 0
    )
    store = Store(db)
    actors = {e.actor for e in list_events(store, tenant="default")}
    assert len(actors) == 1 and actors.pop().startswith("cli:")
