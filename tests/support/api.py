"""The REST API in tests: a simulated evaluation, a stored-evaluation spec, a dispatcher."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from auditor.ecosystem import Ecosystem, EcosystemConfig
from auditor.schemas.bundle import Bundle

FAMILIES = [{"name": "atlas", "size": 3}, {"name": "boreal", "size": 3}]


JUDGES = ["atlas-1", "boreal-1"]


CANDIDATES = ["atlas-2", "atlas-3", "boreal-2", "boreal-3"]


ANALYSIS = {"n_bootstrap": 200, "n_permutations": 200, "min_candidates": 4}


def world_bundle(*, seed: int = 2, n_items: int = 20, with_verdicts: bool = True) -> Bundle:
    """A complete evaluation (every output, answer and verdict) from a simulated world."""
    config = EcosystemConfig.model_validate(
        {"seed": seed, "n_items": n_items, "families": FAMILIES, "judges": JUDGES}
    )
    return Ecosystem(config).bundle(with_verdicts=with_verdicts)


def evaluation_spec(evaluation_id: str) -> dict[str, Any]:
    """An audit of a stored evaluation. The models are never called when the evaluation
    already holds every output and verdict."""
    return {
        "name": "stored evaluation",
        "evaluation_id": evaluation_id,
        "judges": [{"model": f"openai/judge-{j}", "name": j} for j in JUDGES],
        "candidates": [{"model": f"openai/cand-{c}", "name": c} for c in CANDIDATES],
        "analysis": ANALYSIS,
    }


@dataclass
class RecordingDispatcher:
    """The broker seam: records the audits it is asked to start."""

    started: list[str] = field(default_factory=list)
    broker_up: bool = True

    def start_audit(self, audit_id: str) -> None:
        self.started.append(audit_id)

    def ping(self) -> None:
        if not self.broker_up:
            raise ConnectionError("broker unreachable")


PROVIDER_SECRET = "sk-test-4f9b2c7d1e8a6b3c5d7e9f0a1b2c3d4e"
"""Set as OPENAI_API_KEY in the server's environment; no response may ever contain it."""


SIMULATION_SPEC: dict[str, Any] = {
    "name": "simulated",
    "simulation": {"seed": 1, "n_items": 20, "families": FAMILIES, "judges": JUDGES},
    "judges": [{"model": f"sim/{j}", "name": j} for j in JUDGES],
    "candidates": [{"model": f"sim/{c}", "name": c} for c in CANDIDATES],
    "analysis": ANALYSIS,
}


def jsonl(bundle: Bundle) -> bytes:
    records: list[dict[str, Any]] = [{"kind": "header", "schema_version": "1.0"}]
    for kind, values in (
        ("item", bundle.items),
        ("model", bundle.models),
        ("output", bundle.outputs),
        ("verdict", bundle.verdicts),
    ):
        records.extend({"kind": kind, **v.model_dump(exclude_none=True)} for v in values)
    for kind, extra in (("comparison", bundle.comparisons), ("label", bundle.labels)):
        records.extend({"kind": kind, **v.model_dump(mode="json")} for v in extra)
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def metric_value(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        metric, value = line.rsplit(" ", 1)
        if metric == name or metric == f"{name}{{{wanted}}}":
            return float(value)
        if metric.startswith(name + "{"):
            found = dict(part.split("=", 1) for part in metric[len(name) + 1 : -1].split(","))
            if {k: v.strip('"') for k, v in found.items()} == labels:
                return float(value)
    raise KeyError(f"{name}{labels}")


def poll_audit(
    client: httpx.Client, audit_id: str, seen: list[httpx.Response], timeout: float
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/v1/audits/{audit_id}")
        seen.append(response)
        status = response.json()
        if status["status"] not in ("queued", "running"):
            return dict(status)
        time.sleep(0.3)
    raise AssertionError(f"audit {audit_id} did not finish: {status}")


def calls_done(status: dict[str, Any]) -> int:
    return sum(p["done"] + p["failed"] for p in status["progress"].values())
