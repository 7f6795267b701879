"""Realistic `AffinityReport` objects for the report-rendering tests, and a headless browser.

The bundles come from the planted-truth ecosystem (`auditor.ecosystem`), damaged on purpose in
the ways real audits are (unparseable verdicts, a discrete-only model, a pair with no valid
verdict, configured exclusions), then analyzed by `auditor.probes.affinity.analyze_affinity` with
provenance shaped as `auditor.services.audits.finalize_audit` records it. The tests render these
objects; they do not check the statistics (that is `tests/unit/probes/test_affinity.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from auditor.ecosystem import Ecosystem, EcosystemConfig, FamilyConfig
from auditor.probes.affinity import analyze_affinity
from auditor.prompts import BUILTIN_JUDGE_TEMPLATES
from auditor.schemas.bundle import Bundle, Output, Verdict
from auditor.schemas.result import AffinityReport, AnalysisSettings
from auditor.services.analysis import software_versions


@dataclass(frozen=True)
class Damage:
    """Ways to damage a clean ecosystem bundle, as real audits are damaged."""

    invalid_verdicts: dict[tuple[str, str], int] = field(default_factory=dict)
    """(judge, candidate) -> number of verdicts turned unparseable (null)."""
    no_verdicts: tuple[tuple[str, str], ...] = ()
    """(judge, candidate) pairs whose verdicts are all unparseable."""
    discrete_only: tuple[str, ...] = ()
    """Models whose outputs lose their probabilities (chosen option only)."""


def damaged_bundle(config: EcosystemConfig, damage: Damage) -> Bundle:
    bundle = Ecosystem(config).bundle()
    outputs = [
        Output(model=o.model, item=o.item, choice=o.choice, response=o.response)
        if o.model in damage.discrete_only
        else o
        for o in bundle.outputs
    ]
    spoiled: dict[tuple[str, str], int] = {}
    verdicts = []
    for v in bundle.verdicts:
        key = (v.judge, v.candidate)
        budget = damage.invalid_verdicts.get(key, 0)
        if key in damage.no_verdicts or spoiled.get(key, 0) < budget:
            spoiled[key] = spoiled.get(key, 0) + 1
            verdicts.append(
                Verdict(judge=v.judge, candidate=v.candidate, item=v.item, verdict=None, raw="?")
            )
        else:
            verdicts.append(v)
    return Bundle(items=bundle.items, models=bundle.models, outputs=outputs, verdicts=verdicts)


def audit_report(
    config: EcosystemConfig,
    damage: Damage,
    settings: AnalysisSettings,
    *,
    audit_id: str,
    failed_calls: dict[str, int] | None = None,
    notes: tuple[str, ...] = (),
) -> AffinityReport:
    """Analyze a damaged ecosystem bundle, with the provenance a real audit records."""
    ecosystem = Ecosystem(config)
    template = BUILTIN_JUDGE_TEMPLATES["paper"]
    spec = {
        "schema_version": "1.0",
        "name": audit_id,
        "judges": [
            {"model": f"sim/{j}", "family": ecosystem.family_of[j]} for j in ecosystem.judge_names
        ],
        "candidates": [f"sim/{m}" for m in ecosystem.model_names],
        "judge_prompt": {"template": "paper", "system": None, "user": None},
        "sampling": {"temperature": 0.0, "verdict_max_tokens": 2, "seed": 1234},
        "analysis": settings.model_dump(mode="json"),
        "simulation": config.model_dump(mode="json"),
    }
    provenance = {
        "audit_id": audit_id,
        "software": software_versions(),
        "spec": spec,
        "models": [
            {
                "name": m,
                "model": f"sim/{m}",
                "api_base": None,
                "params": {"temperature": 0.0},
                "provider": "simlab",
                "family": ecosystem.family_of[m],
            }
            for m in ecosystem.model_names
        ],
        "prompt_templates": {template.name: template.sha256},
        "judge_prompt": {"name": template.name, "system": template.system, "user": template.user},
    }
    report = analyze_affinity(damaged_bundle(config, damage), settings, provenance=provenance)
    coverage = report.coverage.model_copy(
        update={
            "failed_calls": failed_calls or {},
            "notes": [*report.coverage.notes, *notes],
        }
    )
    # A fixed analysis time, so that the same fixture renders to the same bytes in every run.
    provenance_fixed = report.provenance.model_copy(update={"created_at": "2025-06-02T14:03:11Z"})
    return report.model_copy(update={"coverage": coverage, "provenance": provenance_fixed})


LARGE_FAMILIES = (
    ("atlas", 5),
    ("boreal", 4),
    ("cygnus", 4),
    ("draco", 5),
    ("eridanus", 3),
    ("fornax", 4),
    ("grus", 4),
    ("hydra", 4),
    ("indus", 4),
    ("lyra", 3),
)


@cache
def large_report() -> AffinityReport:
    """9 judges x 40 models (39 candidates each), as in Goel et al. (2025)."""
    families = [
        FamilyConfig(name=name, size=size, trap_strength=2.0) for name, size in LARGE_FAMILIES
    ]
    judges = [f"{name}-2" for name, _ in LARGE_FAMILIES[:9]]
    config = EcosystemConfig(
        seed=1,
        n_items=200,
        families=families,
        judges=judges,
        affinity_strength=0.8,
        judge_affinity={"fornax-2": 0.0, "hydra-2": 0.05},
    )
    damage = Damage(
        invalid_verdicts={("atlas-2", "boreal-3"): 17, ("grus-2", "lyra-3"): 4},
        no_verdicts=(("cygnus-2", "draco-5"),),
        discrete_only=("eridanus-3",),
    )
    return audit_report(
        config,
        damage,
        AnalysisSettings(seed=7),
        audit_id="audit-2025-06-large",
        failed_calls={"answer": 3, "judge": 12},
        notes=("eridanus-3 returned no log-probabilities: its CAPA with every model is discrete.",),
    )


@cache
def small_report() -> AffinityReport:
    """3 judges x 6 models; one judge has too few candidates after exclusions."""
    families = [FamilyConfig(name="atlas", size=2), FamilyConfig(name="boreal", size=4)]
    config = EcosystemConfig(
        seed=3,
        n_items=120,
        families=families,
        judges=["atlas-1", "boreal-1", "boreal-2"],
        affinity_strength=0.6,
    )
    damage = Damage(invalid_verdicts={("atlas-1", "boreal-3"): 5})
    settings = AnalysisSettings(
        n_bootstrap=2000, n_permutations=2000, seed=11, exclude_pairs=[("boreal-2", "atlas-2")]
    )
    return audit_report(config, damage, settings, audit_id="audit-small")


# --- a real browser, driven over the Chrome DevTools Protocol ------------------------------------

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)


@dataclass
class PageVisit:
    """What happened when a page was opened: console errors, requests, screenshots."""

    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    full_page: bytes = b""
    evaluations: dict[str, object] = field(default_factory=dict)


class HeadlessChromium:
    """Chromium started headless with a fresh profile, driven by a minimal CDP client."""

    def __init__(self, binary: str, profile_dir: str) -> None:
        import re
        import subprocess

        self._process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = None
        assert self._process.stderr is not None
        for line in self._process.stderr:  # Chromium prints the endpoint on stderr at start-up
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                url = match.group(1)
                break
        if url is None:
            self.close()
            raise RuntimeError("Chromium did not report a DevTools endpoint")
        from contextlib import ExitStack

        from websockets.sync.client import connect

        self._stack = ExitStack()
        self._socket = self._stack.enter_context(connect(url, max_size=None, open_timeout=20))
        self._next_id = 0
        self._events: list[dict] = []

    def close(self) -> None:
        stack = getattr(self, "_stack", None)
        if stack is not None:
            stack.close()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except Exception:
            self._process.kill()
            self._process.wait(timeout=10)

    def __enter__(self) -> HeadlessChromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        import json

        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._socket.send(json.dumps(message))
        while True:
            reply = json.loads(self._socket.recv(timeout=60))
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def _wait_for(self, method: str, timeout: float = 60) -> None:
        import json
        import time

        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self._events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {timeout} s")
            self._events.append(json.loads(self._socket.recv(timeout=remaining)))

    def visit(
        self,
        url: str,
        *,
        width: int = 1366,
        height: int = 768,
        evaluate: dict[str, str] | None = None,
        full_page: bool = False,
    ) -> PageVisit:
        import base64

        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self._events.clear()
        for domain in ("Page", "Runtime", "Network", "Log"):
            self._send(f"{domain}.enable", session=session)
        self._send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self._send("Page.navigate", {"url": url}, session=session)
        self._wait_for("Page.loadEventFired")
        visit = PageVisit()
        for name, expression in (evaluate or {}).items():
            result = self._send(
                "Runtime.evaluate",
                {"expression": expression, "returnByValue": True},
                session=session,
            )
            visit.evaluations[name] = result.get("result", {}).get("value")
        shot = self._send("Page.captureScreenshot", {"format": "png"}, session=session)
        visit.screenshot = base64.b64decode(shot["data"])
        if full_page:
            size = self._send("Page.getLayoutMetrics", session=session)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
            shot = self._send(
                "Page.captureScreenshot",
                {"format": "png", "clip": clip, "captureBeyondViewport": True},
                session=session,
            )
            visit.full_page = base64.b64decode(shot["data"])
        for event in self._events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                visit.requests.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
            ):
                visit.console_errors.append(str(params.get("args")))
            elif method == "Runtime.exceptionThrown":
                visit.console_errors.append(str(params.get("exceptionDetails")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                visit.console_errors.append(params["entry"].get("text", ""))
        self._send("Target.closeTarget", {"targetId": target})
        return visit
