"""CLI commands of schedules, drift and the audit trail: `auditor schedules ...`,
`auditor trail ...` and `auditor verify REPORT`.

Commands run as ``cli:<user>`` in the audit trail. Exit codes: 0 fine, 1 a verification found
a problem (or the object does not exist), 2 invalid input.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from auditor.cli.options import DbOption, cli_settings, open_store
from auditor.cli.terminal import lazy_console

__all__ = ["schedules_app", "trail_app", "verify", "write_signed_report"]

P = ParamSpec("P")
R = TypeVar("R")

EXIT_PROBLEM = 1
EXIT_INVALID = 2
DEFAULT_TENANT = "default"

schedules_app = typer.Typer(help="Scheduled audits.", no_args_is_help=True)
trail_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
_err = lazy_console(stderr=True)
_out = lazy_console()


def _as_cli_user(command: Callable[P, R]) -> Callable[P, R]:
    """Run a command as ``cli:<user>`` in the audit trail."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from auditor.services import trail  # SQLAlchemy and cryptography: not at CLI start-up

        with trail.acting_as(trail.cli_actor()):
            return command(*args, **kwargs)

    return run


TenantOption = Annotated[str, typer.Option("--tenant", help="Tenant that owns the schedule.")]


def _line(text: str) -> None:
    """One line on stdout, never wrapped (verification messages are read by scripts)."""
    sys.stdout.write(text + "\n")


def _fail(message: str, code: int = EXIT_INVALID) -> None:
    _err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _schedule_document(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant": row.tenant,
        "name": row.name,
        "cron": row.cron,
        "timezone": row.timezone,
        "paused": row.paused,
        "next_due_at": row.next_due_at.isoformat() + "Z",
        "last_slot_at": row.last_slot_at.isoformat() + "Z" if row.last_slot_at else None,
        "webhook_url": row.webhook_url,
        "notify": row.notify,
        "baseline_audit_id": row.baseline_audit_id,
        "created_at": row.created_at.isoformat() + "Z",
        "updated_at": row.updated_at.isoformat() + "Z",
    }


def _load_spec_document(store: Any, path: Path, tenant: str) -> dict[str, Any]:
    """A spec file as a schedule stores it: a bundle file becomes a stored evaluation once, so
    every run reads the same data."""
    from auditor.schemas.bundle import BundleError, load_bundle
    from auditor.schemas.spec import SpecError, load_spec
    from auditor.services.evaluations import store_bundle

    try:
        spec = load_spec(path)
        if spec.bundle is not None:
            evaluation_id = store_bundle(
                store, load_bundle(spec.bundle), tenant=tenant, name=spec.name
            ).id
            spec = spec.model_copy(update={"bundle": None, "evaluation_id": evaluation_id})
    except (SpecError, BundleError) as error:
        _fail("; ".join(str(p) for p in error.problems))
    return spec.public_dict()


@schedules_app.command("create")
@_as_cli_user
def create(
    spec: Annotated[Path, typer.Argument(help="Audit spec (YAML or JSON) run at each slot.")],
    cron: Annotated[
        str, typer.Option(help="Cron: 5 fields, or 6 with seconds last (e.g. '0 6 * * 1').")
    ],
    timezone: Annotated[str, typer.Option("--tz", help="IANA time zone of the cron.")] = "UTC",
    name: Annotated[str | None, typer.Option(help="A label (default: the spec's name).")] = None,
    tenant: TenantOption = DEFAULT_TENANT,
    webhook_url: Annotated[
        str | None, typer.Option(help="URL notified when a judge drifts (signed JSON POST).")
    ] = None,
    webhook_secret: Annotated[
        str | None, typer.Option(help="HMAC secret of the webhook (default: generated).")
    ] = None,
    effect_growth: Annotated[
        float, typer.Option(help="Notify when partial r grows by more than this.")
    ] = 0.2,
    require_significant: Annotated[
        bool, typer.Option(help="Growth counts only when its 95% CI excludes 0.")
    ] = True,
    paused: Annotated[bool, typer.Option(help="Create it paused.")] = False,
    db: DbOption = None,
) -> None:
    """Create a schedule; prints it as JSON (with the webhook secret, shown this once)."""
    from auditor.services import schedules
    from auditor.services.governance import validate_timing
    from auditor.services.keys import validate_tenant
    from auditor.services.notifications import check_webhook_url

    settings = cli_settings(db)
    try:
        validate_tenant(tenant)
        cron = validate_timing(cron, timezone, min_interval=settings.schedule.min_interval)
        if webhook_url:
            check_webhook_url(webhook_url, allow_private=settings.webhook.allow_private)
        notify = schedules.NotifyPolicy(
            effect_growth=effect_growth, require_significant=require_significant
        )
    except ValueError as error:
        _fail(str(error))
    store = open_store(db)
    document = _load_spec_document(store, spec, tenant)
    row = schedules.create_schedule(
        store,
        tenant=tenant,
        name=name or str(document.get("name") or spec.stem),
        spec=document,
        cron=cron,
        timezone=timezone,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        notify=notify,
        paused=paused,
    )
    output = _schedule_document(row)
    if row.webhook_secret:
        output["webhook_secret"] = row.webhook_secret
    sys.stdout.write(json.dumps(output, indent=2) + "\n")


@schedules_app.command("list")
def list_(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    db: DbOption = None,
) -> None:
    """List schedules (paused ones too; deleted ones are not listed)."""
    from auditor.services import schedules

    rows = schedules.list_schedules(open_store(db), tenant=tenant, limit=10_000)
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(_schedule_document(row)) + "\n")
        return
    from rich.table import Table

    table = Table(title="Schedules")
    for column in ("id", "tenant", "name", "cron", "tz", "state", "next due (UTC)"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.id,
            row.tenant,
            row.name,
            row.cron,
            row.timezone,
            "paused" if row.paused else "active",
            row.next_due_at.isoformat(timespec="seconds"),
        )
    _out.print(table)


def _schedule_or_fail(store: Any, schedule_id: str, tenant: str | None) -> Any:
    from auditor.services import schedules

    row = schedules.get_schedule(store, schedule_id, tenant=tenant)
    if row is None:
        _fail(f"no schedule {schedule_id!r}", EXIT_PROBLEM)
    return row


def _run_document(store: Any, run: Any) -> dict[str, Any]:
    audit = store.get_audit(run.audit_id) if run.audit_id else None
    drift = run.drift or {}
    return {
        "id": run.id,
        "slot_at": run.slot_at.isoformat() + "Z",
        "missed_slots": run.missed_slots,
        "claimed_at": run.claimed_at.isoformat() + "Z",
        "state": run.state,
        "audit_id": run.audit_id,
        "status": audit.status if audit else None,
        "finished_at": audit.finished_at.isoformat() + "Z" if audit and audit.finished_at else None,
        "error": run.error,
        "alerts": drift.get("alerts"),
        "drift_vs_previous": [
            {k: j[k] for k in ("judge", "delta", "ci95", "flag_change", "flip_rate")}
            for j in (drift.get("previous") or {}).get("judges", [])
        ],
    }


@schedules_app.command("show")
def show(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")],
    db: DbOption = None,
) -> None:
    """A schedule and its runs (with their drift against the previous run) as JSON."""
    from auditor.services import schedules

    store = open_store(db)
    row = _schedule_or_fail(store, schedule_id, None)
    document = _schedule_document(row)
    document["spec"] = row.spec
    document["runs"] = [_run_document(store, run) for run in schedules.runs_of(store, row.id)]
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@schedules_app.command("runs")
def runs(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")],
    db: DbOption = None,
) -> None:
    """A schedule's runs, one JSON line each (oldest first)."""
    from auditor.services import schedules

    store = open_store(db)
    row = _schedule_or_fail(store, schedule_id, None)
    for run in schedules.runs_of(store, row.id):
        sys.stdout.write(json.dumps(_run_document(store, run)) + "\n")


@schedules_app.command("update")
@_as_cli_user
def update(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")],
    spec: Annotated[Path | None, typer.Option(help="A new audit spec file.")] = None,
    cron: Annotated[str | None, typer.Option(help="A new cron expression.")] = None,
    timezone: Annotated[str | None, typer.Option("--tz", help="A new time zone.")] = None,
    name: Annotated[str | None, typer.Option(help="A new label.")] = None,
    webhook_url: Annotated[str | None, typer.Option(help="A new webhook URL.")] = None,
    effect_growth: Annotated[float | None, typer.Option(help="A new growth threshold.")] = None,
    db: DbOption = None,
) -> None:
    """Change a schedule (the scheduler picks the change up at its next read)."""
    from auditor.services import schedules
    from auditor.services.governance import validate_timing
    from auditor.services.notifications import check_webhook_url

    store = open_store(db)
    row = _schedule_or_fail(store, schedule_id, None)
    settings = cli_settings(db)
    changes: dict[str, Any] = {}
    try:
        if cron is not None or timezone is not None:
            changes["cron"] = validate_timing(
                cron or row.cron,
                timezone or row.timezone,
                min_interval=settings.schedule.min_interval,
            )
            changes["timezone"] = timezone or row.timezone
        if webhook_url is not None:
            changes["webhook_url"] = check_webhook_url(
                webhook_url, allow_private=settings.webhook.allow_private
            )
        if effect_growth is not None:
            changes["notify"] = schedules.NotifyPolicy.model_validate(
                {**row.notify, "effect_growth": effect_growth}
            )
    except ValueError as error:
        _fail(str(error))
    if name is not None:
        changes["name"] = name
    if spec is not None:
        changes["spec"] = _load_spec_document(store, spec, row.tenant)
    if not changes:
        _fail("nothing to change (give --spec, --cron, --tz, --name, --webhook-url, ...)")
    updated = schedules.update_schedule(store, schedule_id, tenant=row.tenant, **changes)
    sys.stdout.write(json.dumps(_schedule_document(updated), indent=2) + "\n")


def _set_paused(schedule_id: str, paused: bool, db: str | None) -> None:
    from auditor.services import schedules

    store = open_store(db)
    row = _schedule_or_fail(store, schedule_id, None)
    schedules.set_paused(store, schedule_id, tenant=row.tenant, paused=paused)
    _err.print(f"schedule {schedule_id} {'paused' if paused else 'resumed'}")


@schedules_app.command("pause")
@_as_cli_user
def pause(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")], db: DbOption = None
) -> None:
    """Pause a schedule (a run already going finishes)."""
    _set_paused(schedule_id, True, db)


@schedules_app.command("resume")
@_as_cli_user
def resume(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")], db: DbOption = None
) -> None:
    """Resume a schedule from its next slot (slots passed while paused are not caught up)."""
    _set_paused(schedule_id, False, db)


@schedules_app.command("delete")
@_as_cli_user
def delete(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")], db: DbOption = None
) -> None:
    """Delete a schedule (its runs and their audits are kept)."""
    from auditor.services import schedules

    store = open_store(db)
    row = _schedule_or_fail(store, schedule_id, None)
    schedules.delete_schedule(store, schedule_id, tenant=row.tenant)
    _err.print(f"schedule {schedule_id} deleted")


@schedules_app.command("baseline")
@_as_cli_user
def baseline(
    schedule_id: Annotated[str, typer.Argument(help="Schedule id.")],
    audit_id: Annotated[str, typer.Argument(help="A finished run's audit id.")],
    db: DbOption = None,
) -> None:
    """Designate the run later runs are compared with (besides the previous run)."""
    from auditor.services import schedules

    store = open_store(db)
    row = _schedule_or_fail(store, schedule_id, None)
    if not schedules.is_finished_run(store, row.id, audit_id):
        _fail(f"audit {audit_id!r} is not a finished run of schedule {schedule_id}")
    schedules.set_baseline(store, schedule_id, tenant=row.tenant, audit_id=audit_id)
    _err.print(f"baseline of schedule {schedule_id}: audit {audit_id}")


def write_signed_report(
    store: Any,
    audit_id: str,
    out_dir: Path,
    formats: list[str],
    *,
    key_path: str | None = None,
    stem: str = "report",
) -> dict[str, Path]:
    """Render a finished audit's report in ``formats`` (plus, for a scheduled run, the drift
    page), sign the manifest of all files and write them; returns name -> path."""
    import reports
    from auditor.schemas.result import AffinityReport
    from auditor.services.audits import AuditNotFinished, AuditNotFound, finished_result
    from auditor.services.governance import sign_report_files
    from auditor.services.signing import write_signed

    try:
        audit, document = finished_result(store, audit_id)
    except (AuditNotFinished, AuditNotFound):
        raise KeyError(f"no finished result for audit {audit_id!r}") from None
    report = AffinityReport.model_validate(document)
    # The HTML is drawn once and printed to PDF; the spec appendix is signed with the rest.
    files = reports.render_files(report, formats, stem=stem)  # type: ignore[arg-type]
    drift = (report.provenance.model_extra or {}).get("drift")
    if drift:
        from reports.drift import render_drift_html

        files[f"{stem}.drift.html"] = render_drift_html(drift)
    signed = sign_report_files(
        store, audit_id, files, report=report, tenant=audit.tenant, key_path=key_path
    )
    return write_signed(out_dir, files, signed, stem=stem)


@schedules_app.command("report")
@_as_cli_user
def report(
    audit_id: Annotated[str, typer.Argument(help="Audit id (a scheduled run's, or any).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory.")] = Path("audit-output"),
    formats: Annotated[
        list[str], typer.Option("--format", help="html, md, json or pdf (repeat).")
    ] = ["html", "json"],  # noqa: B006
    db: DbOption = None,
) -> None:
    """Render an audit's report with its drift page (scheduled runs) and a signed manifest."""
    bad = [f for f in formats if f not in ("html", "md", "json", "pdf")]
    if bad:
        _fail(f"--format: must be html, md, json or pdf; got {bad[0]!r}")
    store = open_store(db)
    try:
        paths = write_signed_report(
            store, audit_id, out_dir, formats, key_path=cli_settings(db).signing.key_path
        )
    except KeyError as error:
        _fail(str(error.args[0]), EXIT_PROBLEM)
    for name, path in paths.items():
        _line(f"{name}: {path}")


# --- the audit trail ---------------------------------------------------------------------------


@trail_app.command("verify")
def trail_verify(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the whole chain (every entry's hash, every link, no gap, the head) and every
    stored audit spec, result and finished call against the hash the trail recorded. Exit 1
    naming each broken entry or changed object."""
    from auditor.services import trail

    store = open_store(db)
    report = trail.verify_store(store)
    results = trail.verify_objects(store)
    if as_json:
        document = {**report.model_dump(mode="json"), "results": results}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif report.ok and not results:
        _line(
            f"trail intact: {report.n_entries} entries; head {report.last_seq} {report.last_hash}"
        )
    else:
        for problem in report.problems:
            _line(problem.message)
        for line in results:
            _line(line)
        problems = len(report.problems) + len(results)
        _line(f"trail BROKEN: {problems} problem(s) in {report.n_entries} entries")
    if not report.ok or results:
        raise typer.Exit(EXIT_PROBLEM)


@trail_app.command("list")
def trail_list(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's.")] = None,
    after: Annotated[int, typer.Option(help="Entries after this sequence number.")] = 0,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    db: DbOption = None,
) -> None:
    """Entries of the trail as JSON lines, oldest first."""
    from auditor.services import trail

    for event in trail.list_events(open_store(db), tenant=tenant, after=after, limit=limit):
        sys.stdout.write(event.model_dump_json() + "\n")


@trail_app.command("public-key")
def public_key(db: DbOption = None) -> None:
    """Print the report signing key's public half (JSON, as the API serves it)."""
    from auditor.services.signing import load_or_create_key, public_key_info

    key = load_or_create_key(open_store(db), cli_settings(db).signing.key_path)
    sys.stdout.write(public_key_info(key).model_dump_json(indent=2) + "\n")


def verify(
    report: Annotated[Path, typer.Argument(help="A report file, or its .manifest.json.")],
    public_key_file: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="Trusted public key (PEM, base64, or the JSON of GET /v1/signing-key).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Verify a report file's signature and hashes offline. Exit 1 naming every mismatch."""
    from auditor.services.signing import load_public_key, verify_report

    if not report.exists():
        _fail(f"{report}: no such file")
    trusted = None
    if public_key_file is not None:
        try:
            trusted = load_public_key(public_key_file)
        except (OSError, ValueError, KeyError) as error:
            _fail(f"--public-key: cannot read {public_key_file}: {error}")
    result = verify_report(report, trusted_key=trusted)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        for line in result.problems:  # what does not match first, then what does
            _line(f"MISMATCH: {line}")
        for line in result.checked:
            _line(f"ok: {line}")
        if result.ok:
            note = "" if trusted else " (pin the signer with --public-key)"
            _line(f"verified: signed by key {result.key_id}{note}")
    if not result.ok:
        raise typer.Exit(EXIT_PROBLEM)
