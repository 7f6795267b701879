"""A newcomer's run, end to end through the real command line (subprocesses): progress on
stderr, the judge table and verdict on stdout, signed reports that `auditor verify` accepts,
and `auditor status` / `auditor audits list` finding the audit afterwards."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.specs import small_spec


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "COLUMNS": "160"}
    env.pop("AUDITOR_DATABASE_URL", None)
    return run_cli(*args, env=env, cwd=cwd, timeout=900)


def test_a_run_ends_with_a_verdict_signed_reports_and_findable_status(tmp_path: Path) -> None:
    spec = small_spec(n_items=12, sizes=3, families=("atlas", "boreal"))
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    ran = _cli("run", "spec.json", "--out", "out", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr
    # progress: stages in words, totals, and a cost said to be simulated
    assert re.search(r"\d[\d,]* of \d[\d,]* calls \(\d+%\)", ran.stderr), ran.stderr
    assert "simulated cost $" in ran.stderr and "(not billed)" in ran.stderr
    assert "Verdict: " in ran.stdout and "judges flagged for affinity bias" in ran.stdout
    assert "Open the report: file://" in ran.stdout
    for name in ("report.json", "report.html", "report.spec.json", "report.manifest.json"):
        assert (tmp_path / "out" / name).exists(), name
    verified = _cli("verify", "out/report.html", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "MISMATCH" not in verified.stdout and "verified: signed by key" in verified.stdout
    audit_id = ran.stderr.split("audit ", 1)[1].split(":", 1)[0]
    status = _cli("status", audit_id, cwd=tmp_path)  # ./auditor.sqlite, the default
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "succeeded"
    listed = _cli("audits", "list", cwd=tmp_path)
    assert listed.returncode == 0 and audit_id in listed.stdout
