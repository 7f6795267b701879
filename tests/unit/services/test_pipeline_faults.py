"""The pipeline's rules under faults (auditor/services/pipeline.py), on real storage and
litellm's real path with the simulated provider: transient failures stay pending and are sent
again by later batches, a permanent model failure stops that model at once, a dead batch holds
its calls only for its lease, each reply is stored as it arrives, judge calls start as soon as
their answer is stored. References: the simulated world's own bundle (planted truth) and
counts of the calls the provider saw (its ledger)."""

from __future__ import annotations

import bisect
import socket
from collections import Counter
from pathlib import Path

import pytest

from auditor.services.audits import audit_status
from auditor.services.pipeline import Reply
from tests.support.pipeline import (
    assert_same_numbers,
    ledger_lines,
    report_of,
    run_audit,
    world_report,
)
from tests.support.runners import Clock, stepped_pipeline, wait_until
from tests.support.specs import small_spec
from workers.local import BATCH_THREADS


@pytest.mark.slow
def test_calls_out_of_retries_are_sent_again_by_later_batches_to_full_coverage(
    tmp_path: Path,
) -> None:
    # No retry inside a batch at all: every transient failure (30% of calls) must be sent
    # again by a later batch. Before: each was recorded as failed for good.
    ledger = tmp_path / "ledger.txt"
    spec = small_spec(provider={"transient_rate": 0.3, "ledger": str(ledger)})
    store, audit_id = run_audit(f"sqlite:///{tmp_path / 'a.sqlite'}", spec, max_retries=0)
    status = audit_status(store, store.get_audit(audit_id))
    assert status.status == "succeeded"
    assert all(v.failed == 0 and v.pending == 0 for v in status.progress.values())
    assert status.failures == []
    assert len(ledger_lines(ledger)) > 1.25 * 1680  # the failed attempts were sent again
    assert_same_numbers(report_of(store, audit_id), world_report(spec))


@pytest.mark.slow
def test_calls_out_of_retries_at_the_deadline_are_named_and_a_rerun_sends_them(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    ledger = tmp_path / "ledger.txt"
    failing = small_spec(
        n_items=4,
        sizes=2,
        deadline_seconds=6.0,
        provider={
            "transient_rate": 1.0,
            "transient_kinds": ["rate_limit", "server_error"],
            "ledger": str(ledger),
        },
    )
    store, first = run_audit(url, failing, max_retries=1)
    status = audit_status(store, store.get_audit(first))
    failed = list(store.calls_of(first, status="failed"))
    assert failed and not list(store.calls_of(first, status="pending"))
    retried = [row for row in failed if row.error.startswith("gave up at the deadline after")]
    assert retried, Counter(row.error[:40] for row in failed)
    assert retried and all(row.attempts >= 2 for row in retried)
    assert {f["model"] for f in status.failures} == {row.model for row in retried}
    assert all("ran out of retries before the deadline" in f["reason"] for f in status.failures)
    assert all("RateLimitError" in f["reason"] or "500" in f["reason"] for f in status.failures)
    sent_before = len(ledger_lines(ledger))

    healthy = {**failing, "simulated_provider": {"ledger": str(ledger)}}
    healthy.pop("deadline_seconds")
    _, second = run_audit(url, healthy)
    after = audit_status(store, store.get_audit(second))
    assert after.status == "succeeded", after.error
    assert all(v.failed == 0 and v.pending == 0 for v in after.progress.values())
    # every call the first audit gave up on was sent again (the provider saw it)
    assert len(ledger_lines(ledger)) - sent_before >= len(failed)


@pytest.mark.slow
def test_a_spec_without_a_deadline_gets_the_deployments_default(tmp_path: Path) -> None:
    # A provider that answers 429/500 for ever: without a deadline of its own the audit used to
    # retry for ever; the deployment's default deadline (24 h unless set) ends it, named.
    spec = small_spec(
        n_items=4,
        sizes=2,
        provider={"transient_rate": 1.0, "transient_kinds": ["rate_limit", "server_error"]},
    )
    assert "deadline_seconds" not in spec
    store, audit_id = run_audit(
        f"sqlite:///{tmp_path / 'a.sqlite'}", spec, max_retries=1, default_deadline_seconds=3.0
    )
    status = audit_status(store, store.get_audit(audit_id))
    assert not list(store.calls_of(audit_id, status="pending"))
    assert status.failures and all(
        "ran out of retries before the deadline (3 s)" in f["reason"] for f in status.failures
    ), status.failures


@pytest.mark.slow
def test_a_model_that_fails_permanently_is_not_called_again(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    spec = small_spec(
        provider={"permanent_models": ["boreal-2"], "ledger": str(ledger)},
        limits={"sim": {"max_concurrency": 1}},
    )
    store, audit_id = run_audit(f"sqlite:///{tmp_path / 'a.sqlite'}", spec)
    sent = Counter(line.split("\t")[0] for line in ledger_lines(ledger))
    # one call in flight for the whole run: the first error stopped the rest (before, one call
    # at a time per batch, so up to the BATCH_THREADS batches running at once met it)
    assert sent["boreal-2"] == 1
    failed = list(store.calls_of(audit_id, status="failed"))
    assert {row.model for row in failed} == {"boreal-2"} and len(failed) == 80
    first = [row for row in failed if "not sent" not in row.error]
    assert len(first) == sent["boreal-2"]
    assert all("AuthenticationError" in row.error for row in first)
    status = audit_status(store, store.get_audit(audit_id))
    assert [f["model"] for f in status.failures] == ["boreal-2"]


@pytest.mark.slow
def test_a_limit_keys_calls_in_flight_are_bounded_for_the_whole_run(tmp_path: Path) -> None:
    # `max_concurrency` bounds `auditor run` as a whole, as it bounds a worker process: its
    # batches run on one event loop and share the bound. Before, each of the BATCH_THREADS
    # batches running at once had a bound of its own (up to 4 x 2 calls in flight).
    latency = 0.05
    ledger = tmp_path / "ledger.txt"
    spec = small_spec(
        n_items=6,
        sizes=2,
        provider={"latency": latency, "ledger": str(ledger)},
        limits={"sim": {"max_concurrency": 2}},
    )
    store, audit_id = run_audit(f"sqlite:///{tmp_path / 'a.sqlite'}", spec, batch_size=8)
    assert audit_status(store, store.get_audit(audit_id)).status == "succeeded"
    starts = sorted(float(line.split("\t")[3]) for line in ledger_lines(ledger))
    assert len(starts) > 8 * BATCH_THREADS  # enough calls for every batch thread to run at once
    # each call lasts at least `latency` from its start (the ledger's time): the calls that
    # started within less than that of each other were in flight together
    window = 0.95 * latency
    in_flight = max(bisect.bisect_left(starts, at + window) - i for i, at in enumerate(starts))
    assert in_flight == 2


def test_a_batch_that_dies_keeps_the_replies_it_had_and_its_calls_return_after_the_lease(
    tmp_path: Path,
) -> None:
    clock = Clock()
    pipeline, runner, audit_id = stepped_pipeline(
        tmp_path, small_spec(n_items=8, sizes=2), clock, lease_seconds=60.0
    )
    store = pipeline.store
    pipeline.advance(audit_id)
    batches = runner.take()
    assert batches and sum(len(b.keys) for b in batches) == 96  # 6 models x 8 items x 2 kinds
    real_client = pipeline.client
    seen: list[str] = []

    class Killed(Exception):
        pass

    def stored(key: str) -> bool:
        return any(row.key == key for row in store.calls_of(audit_id, status="done"))

    def dies_after_ten(spec, orders, *, renew, on_reply, stopped) -> None:  # type: ignore[no-untyped-def]
        def counting(reply: Reply) -> None:
            on_reply(reply)
            seen.append(reply.key)
            # stored as it arrives: by the writer, while the batch still runs (waits for the
            # condition, bounded; no timing is asserted)
            assert wait_until(lambda: stored(reply.key), timeout=30.0), reply.key
            if len(seen) == 10:
                raise Killed  # the worker is gone; what it had is already stored

        real_client(spec, list(orders)[:10], renew=renew, on_reply=counting, stopped=stopped)

    pipeline.client = dies_after_ten
    dead = batches[0]
    with pytest.raises(Killed):
        pipeline.run_batch(audit_id, dead.keys, dead.token)
    pipeline.client = real_client
    done = {row.key for row in store.calls_of(audit_id, status="done")}
    assert set(seen) <= done and len(seen) == 10
    # Every other batch runs to its end (and the judge batches they lead to); the dead
    # batch's unanswered calls stay held by its lease, and no batch is left to advance.
    for batch in batches[1:]:
        pipeline.run_batch(audit_id, batch.keys, batch.token)
    while True:
        pipeline.advance(audit_id)
        more = runner.take()
        if not more:
            break
        for batch in more:
            pipeline.run_batch(audit_id, batch.keys, batch.token)
    assert runner.wakes, "a look-again must be set"
    assert 0 < runner.wakes[-1] <= 60.0 + 0.1  # bounded by the lease, no beat needed
    assert store.get_audit(audit_id).stage == "collect"
    clock.now += runner.wakes[-1]
    pipeline.advance(audit_id)
    again = {key for batch in runner.take() for key in batch.keys}
    assert again == set(dead.keys) - done  # the dead batch's unanswered calls, sent again


def test_a_batch_that_claims_nothing_returns_zero(tmp_path: Path) -> None:
    pipeline, runner, audit_id = stepped_pipeline(tmp_path, small_spec(n_items=4, sizes=2))
    pipeline.advance(audit_id)
    batch = runner.take()[0]
    assert pipeline.run_batch(audit_id, batch.keys, "another-dispatch") == 0
    assert pipeline.run_batch(audit_id, batch.keys, batch.token) == len(batch.keys)
    assert pipeline.run_batch(audit_id, batch.keys, batch.token) == 0  # a re-delivered copy


def test_judge_calls_start_as_soon_as_their_answer_is_stored(tmp_path: Path) -> None:
    pipeline, runner, audit_id = stepped_pipeline(
        tmp_path, small_spec(n_items=20, sizes=3), batch_size=32
    )
    pipeline.advance(audit_id)
    collect = runner.take()
    assert len(collect) > 2
    pipeline.run_batch(audit_id, collect[0].keys, collect[0].token)
    progress = pipeline.store.progress(audit_id)
    assert progress["answer"]["pending"] > 0  # answers are still being collected...
    assert progress["judge"]["pending"] > 0  # ...and judge calls for those stored are planned
    pipeline.advance(audit_id)
    sent = {key for batch in runner.take() for key in batch.keys}
    judge_keys = {row.key for row in pipeline.store.calls_of(audit_id, stage="judge")}
    assert sent & judge_keys  # and dispatched with no stage barrier


def test_batches_interleave_the_models(tmp_path: Path) -> None:
    pipeline, runner, audit_id = stepped_pipeline(
        tmp_path, small_spec(n_items=20, sizes=3), batch_size=12
    )
    pipeline.advance(audit_id)
    rows = {row.key: row.model for row in pipeline.store.calls_of(audit_id)}
    for batch in runner.take()[:3]:
        assert len({rows[key] for key in batch.keys}) == 9  # every model in every batch


@pytest.mark.slow
def test_an_unset_api_key_env_is_named_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUDITOR_TEST_UNSET_KEY", raising=False)
    ledger = tmp_path / "ledger.txt"
    spec = small_spec(provider={"ledger": str(ledger)})
    spec["candidates"][0]["api_key_env"] = "AUDITOR_TEST_UNSET_KEY"
    name = spec["candidates"][0]["name"]
    store, audit_id = run_audit(f"sqlite:///{tmp_path / 'a.sqlite'}", spec)
    status = audit_status(store, store.get_audit(audit_id))
    assert status.failures == [
        {
            "model": name,
            "reason": "environment variable AUDITOR_TEST_UNSET_KEY is not set (api_key_env)",
        }
    ]
    sent = Counter(line.split("\t")[0] for line in ledger_lines(ledger))
    assert sent[name] == 0 and sum(sent.values()) > 0
    failed = list(store.calls_of(audit_id, status="failed"))
    assert {row.model for row in failed} == {name}
    assert all(row.error.startswith("not sent: environment variable") for row in failed)
    report = report_of(store, audit_id)
    assert any("AUDITOR_TEST_UNSET_KEY" in note for note in report.coverage.notes)


@pytest.mark.slow
def test_a_model_on_a_port_where_nothing_listens_fails_as_unreachable(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = small_spec(n_items=8)
    spec["candidates"].append(
        {"model": "openai/ghost", "name": "ghost", "api_base": f"http://127.0.0.1:{port}/v1"}
    )
    # The default retries (5): a refused connection is not retried inside the batch (before:
    # each call was sent 6 times before the model counted as unreachable).
    store, audit_id = run_audit(f"sqlite:///{tmp_path / 'a.sqlite'}", spec, max_retries=5)
    status = audit_status(store, store.get_audit(audit_id))
    assert [f["model"] for f in status.failures] == ["ghost"]
    assert status.failures[0]["reason"].startswith("unreachable (it never answered)")
    assert "ConnectionRefusedError" in status.failures[0]["reason"]
    failed = list(store.calls_of(audit_id, status="failed"))
    assert {row.model for row in failed} == {"ghost"}
    assert len(failed) == 16  # 8 items x (mcq + answer)
    # each call that met the refusal was tried once; the rest were not sent
    assert {row.attempts for row in failed} <= {0, 1}, Counter(row.attempts for row in failed)
    assert all(v.pending == 0 for v in status.progress.values())
    assert any("ghost" in note for note in report_of(store, audit_id).coverage.notes)
