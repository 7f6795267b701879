"""The audit spec: what to audit, with which models, prompts, limits and analysis settings.

A spec is YAML or JSON. It never holds credentials: a model names the environment variable
that holds its key (``api_key_env``), and the worker reads it at call time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from auditor.schemas.bundle import BundleError, Problem
from auditor.schemas.limits import MAX_NAME_LENGTH, MAX_URL_LENGTH
from auditor.schemas.prompts import (
    BUILTIN_JUDGE_TEMPLATES,
    GRADER_TEMPLATE,
    JUDGE_PARAPHRASES,
    MCQ_PARAPHRASES,
    JudgeTemplate,
    check_placeholders,
)
from auditor.schemas.providers import effective_api_base, is_local_base
from auditor.schemas.result import AnalysisSettings
from auditor.schemas.simulation import EcosystemConfig

__all__ = [
    "SPEC_SCHEMA_VERSION",
    "AuditSpec",
    "Battery",
    "CustomTemplate",
    "GraderPrompt",
    "JudgePrompt",
    "ModelSpec",
    "PromptVariants",
    "ProviderLimits",
    "Sampling",
    "SimulatedProvider",
    "SpecError",
    "load_spec",
    "parse_spec",
]

SPEC_SCHEMA_VERSION: Final = "1.0"
_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelSpec(BaseModel):
    """A model called through litellm."""

    model_config = _STRICT

    model: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="litellm model string with its provider prefix, e.g. `openai/gpt-4o-mini`, "
        "`anthropic/claude-3-5-haiku-latest`, `sim/atlas-1`.",
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Name in results (default: the model string).",
    )
    api_base: str | None = Field(
        default=None, max_length=MAX_URL_LENGTH, description="Base URL of the provider's API."
    )
    api_key_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the API key (never the key).",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Extra completion parameters (e.g. top_p, seed)."
    )
    provider: str | None = Field(
        default=None, max_length=MAX_NAME_LENGTH, description="Provider, for the report."
    )
    family: str | None = Field(
        default=None, max_length=MAX_NAME_LENGTH, description="Model family, for exclusions."
    )

    @property
    def display_name(self) -> str:
        return self.name or self.model

    @property
    def provider_key(self) -> str:
        """The model's provider: its `provider`, else the prefix of its model string."""
        return self.provider or self.model.split("/", 1)[0]

    @property
    def server(self) -> str | None:
        """The server its `api_base` names (without a trailing slash), if it names one."""
        return self.api_base.rstrip("/") if self.api_base else None

    @property
    def is_local(self) -> bool:
        """Whether the model is served on this machine or a private network (its `api_base`,
        or the local default litellm uses for providers such as ``ollama/``)."""
        return is_local_base(effective_api_base(self.model, self.api_base))

    @model_validator(mode="after")
    def _no_secrets(self) -> ModelSpec:
        forbidden = {"api_key", "key", "token", "authorization"} & {k.lower() for k in self.params}
        if forbidden:
            raise ValueError(
                f"params must not hold credentials ({', '.join(sorted(forbidden))}); name an "
                "environment variable in api_key_env instead"
            )
        return self


class SpecError(BundleError):
    """An invalid audit spec; ``problems`` names every bad field."""


class JudgePrompt(BaseModel):
    """Which judge prompt to use: a built-in (`paper`, `reference`) or a custom one."""

    model_config = _STRICT

    template: str = Field(
        default="paper",
        description="`paper` (question and answer only; Goel et al. 2025), `reference` "
        "(also shows the gold answer), or `custom`.",
    )
    system: str | None = Field(default=None, description="Custom system message.")
    user: str | None = Field(
        default=None,
        description="Custom user message with placeholders {question}, {answer}, {reference}.",
    )

    def resolve(self) -> JudgeTemplate:
        if self.template == "custom":
            if not self.user or "{answer}" not in self.user:
                raise ValueError("judge_prompt.user: a custom template needs an {answer} field")
            return JudgeTemplate(name="custom", system=self.system or "", user=self.user)
        try:
            return BUILTIN_JUDGE_TEMPLATES[self.template]
        except KeyError:
            raise ValueError(
                f"judge_prompt.template: must be paper, reference or custom; got {self.template!r}"
            ) from None


class CustomTemplate(BaseModel):
    """A prompt template given in the spec (placeholders are checked where it is used)."""

    model_config = _STRICT

    name: str = Field(min_length=1, description="Name; answers under it carry it as `variant`.")
    system: str | None = Field(default=None, description="System message (judges, grader).")
    user: str = Field(description="User message with its placeholders.")


class PromptVariants(BaseModel):
    """Extra templates for prompt stability (Zhou et al. 2024): every model answers the
    multiple-choice items, and every judge grades, also under each of these; names of built-in
    paraphrases (`auditor.schemas.prompts`) or custom templates."""

    model_config = _STRICT

    mcq: list[str | CustomTemplate] = Field(
        default_factory=list,
        description="MCQ templates beyond the primary: built-in `mcq-terse`, `mcq-formal`, "
        "`mcq-exam`, or custom ({question} and {options} required).",
    )
    judge: list[str | CustomTemplate] = Field(
        default_factory=list,
        description="Judge templates beyond the primary: built-in `judge-strict`, "
        "`judge-plain`, or custom ({question} and {answer} required).",
    )
    max_items: int | None = Field(
        default=None,
        ge=1,
        description="Ask the variants on the audit's first N items only (None: every item), "
        "to bound their cost; prompt stability compares templates on the items seen under "
        "all of them.",
    )
    judge_max_items: int | None = Field(
        default=None,
        ge=1,
        description="The judge variants on the first N items only (None: as max_items); a "
        "judge variant costs one call per candidate per item, so it is bounded apart.",
    )

    @property
    def judge_items(self) -> int | None:
        """How many of the first items the judge variants are asked on (None: all)."""
        return self.max_items if self.judge_max_items is None else self.judge_max_items

    def mcq_templates(self) -> list[tuple[str, str]]:
        """(name, template) of each MCQ variant; ValueError naming the entry when invalid."""
        resolved = []
        for i, entry in enumerate(self.mcq):
            field = f"prompt_variants.mcq[{i}]"
            if isinstance(entry, str):
                if entry not in MCQ_PARAPHRASES:
                    raise ValueError(
                        f"{field}: unknown built-in template {entry!r}; known: "
                        f"{', '.join(MCQ_PARAPHRASES)}"
                    )
                resolved.append((entry, MCQ_PARAPHRASES[entry]))
            else:
                check_placeholders(entry.user, ["question", "options"], f"{field}.user")
                resolved.append((entry.name, entry.user))
        _unique([name for name, _ in resolved], "prompt_variants.mcq")
        return resolved

    def judge_templates(self) -> list[JudgeTemplate]:
        """The judge variants; ValueError naming the entry when invalid."""
        resolved = []
        for i, entry in enumerate(self.judge):
            field = f"prompt_variants.judge[{i}]"
            if isinstance(entry, str):
                if entry not in JUDGE_PARAPHRASES:
                    raise ValueError(
                        f"{field}: unknown built-in template {entry!r}; known: "
                        f"{', '.join(JUDGE_PARAPHRASES)}"
                    )
                resolved.append(JUDGE_PARAPHRASES[entry])
            else:
                check_placeholders(entry.user, ["question", "answer"], f"{field}.user")
                resolved.append(
                    JudgeTemplate(name=entry.name, system=entry.system or "", user=entry.user)
                )
        _unique([t.name for t in resolved], "prompt_variants.judge")
        return resolved


def _unique(names: list[str], field: str) -> None:
    if "primary" in names:
        raise ValueError(f"{field}: 'primary' names the audit's own template; choose another name")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{field}: template names must be unique; repeated: {repeated}")


class GraderPrompt(BaseModel):
    """The three-way grader's prompt: the built-in one, or a custom one that shows the
    question, the reference answer and the candidate's answer."""

    model_config = _STRICT

    system: str | None = Field(default=None, description="Custom system message.")
    user: str | None = Field(
        default=None,
        description="Custom user message with placeholders {question}, {reference}, {answer}.",
    )

    def resolve(self) -> JudgeTemplate:
        if self.user is None and self.system is None:
            return GRADER_TEMPLATE
        check_placeholders(self.user, ["question", "reference", "answer"], "grader_prompt.user")
        return JudgeTemplate(
            name="grader-custom",
            system=self.system if self.system is not None else GRADER_TEMPLATE.system,
            user=self.user or "",
        )


DEFAULT_VERDICT_MAX_TOKENS: Final = 128
"""Room for a chat judge that explains first (small instruction-tuned models write 30-100
tokens before "Verdict: 1"); 4 cut such replies off before their verdict."""


class Sampling(BaseModel):
    model_config = _STRICT

    temperature: float = Field(default=0.0, ge=0, description="Sampling temperature.")
    answer_max_tokens: int = Field(default=256, ge=1, description="Free-form answer length.")
    verdict_max_tokens: int = Field(
        default=DEFAULT_VERDICT_MAX_TOKENS,
        ge=1,
        description="Judge reply length in tokens. Real chat judges often explain before the "
        'verdict ("The candidate says ... Verdict: 1"); a reply cut short of its verdict is '
        "unreadable. Billing is for the tokens a judge writes, not this bound.",
    )
    grade_max_tokens: int = Field(default=8, ge=1, description="Grader reply length.")
    top_logprobs: int = Field(default=20, ge=1, le=20, description="Log-probs per MCQ answer.")


HOSTED_CONCURRENCY: Final = 32
"""Default calls in flight per worker process for a hosted provider's API."""
LOCAL_CONCURRENCY: Final = 4
"""Default calls in flight per worker process for a server on this machine or a private network
(llama.cpp, vLLM, Ollama): it serves a few requests at once; more only queue or time out."""


class ProviderLimits(BaseModel):
    model_config = _STRICT

    rpm: int | None = Field(default=None, ge=1, description="Requests per minute (shared).")
    tpm: int | None = Field(default=None, ge=1, description="Tokens per minute (shared).")
    burst_seconds: float = Field(
        default=60.0,
        gt=0,
        le=60,
        description="How many seconds of the rpm/tpm allowance may be spent at once. 60 lets a "
        "full minute's calls go out together; providers that enforce per second (many do, "
        "quantizing the per-minute limit) answer such bursts with 429: set 1 for those.",
    )
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Calls in flight per limit key in one worker process, or in `auditor run` "
        f"with all its batches (default {HOSTED_CONCURRENCY} for a hosted provider, "
        f"{LOCAL_CONCURRENCY} for a server on this machine or a private network, which a burst "
        "of calls would overload).",
    )


TransientKind = Literal["rate_limit", "server_error", "timeout", "connection"]
TRANSIENT_KINDS: tuple[TransientKind, ...] = ("rate_limit", "server_error", "timeout", "connection")


class SimulatedProvider(BaseModel):
    """How the simulated provider behaves (latency and injected faults, for tests and
    benchmarks). Not part of any call's key: it changes whether a call succeeds, not what a
    successful call returns."""

    model_config = _STRICT

    latency: float = Field(default=0.0, ge=0, description="Seconds per call.")
    transient_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of calls that fail with a transient error."
    )
    transient_kinds: list[TransientKind] = Field(
        default_factory=lambda: list(TRANSIENT_KINDS), description="Transient errors drawn from."
    )
    permanent_models: list[str] = Field(
        default_factory=list, description="Simulated models whose calls fail with an auth error."
    )
    garbage_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of judge replies that are not 0 or 1."
    )
    discrete_models: list[str] = Field(
        default_factory=list, description="Simulated models that return no log-probabilities."
    )
    ledger: str | None = Field(
        default=None, description="File to which every simulated call appends a line (tests)."
    )
    rpm: int | None = Field(
        default=None,
        gt=0,
        description="Requests per minute the simulated provider serves; above it it answers 429 "
        "with a `retry-after` header, like a real provider (a token bucket refilled at rpm/60 "
        "per second holding `burst_seconds` of it).",
    )
    tpm: int | None = Field(
        default=None,
        gt=0,
        description="Tokens (prompt + completion) per minute served, enforced like `rpm`.",
    )
    burst_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How many seconds of the rpm/tpm allowance the provider accepts at once.",
    )
    limit_url: str | None = Field(
        default=None,
        description="Redis URL where the provider keeps its rpm/tpm buckets, so every worker "
        "process meets the same limit (as every client of a real provider does); none = per "
        "process.",
    )


BATTERY_PROBES: Final = (
    "position",
    "verbosity",
    "self_preference",
    "cues",
    "injection",
    "repeat",
)
"""Probes whose model calls an audit can plan (human agreement needs human labels instead)."""


class Battery(BaseModel):
    """Which judging protocol an audit uses and which battery probes it plans calls for."""

    model_config = _STRICT

    protocol: Literal["pointwise", "pairwise", "both"] = Field(
        default="pointwise",
        description="`pointwise`: each answer graded 1/0 (the paper's protocol); `pairwise`: "
        "two answers compared, each pair in both orders; `both`.",
    )
    probes: list[str] = Field(
        default_factory=list,
        description=f"Battery probes to plan calls for, any of {', '.join(BATTERY_PROBES)} "
        "(empty: all that the protocol supports).",
    )
    seed: int = Field(default=0, description="Seed of pair choice, padding and nonces.")
    max_pairs: int | None = Field(
        default=None,
        ge=1,
        description="Base pairs per judge for the pairwise probes: the first N items give one "
        "each (none: every item). Each pair costs a few calls per probe (both orders, its "
        "variants), so this bounds the battery's cost.",
    )
    min_comparisons: int = Field(
        default=20,
        ge=1,
        description="Fewer planned comparisons per judge and probe than this fails the design "
        "check before anything is sent.",
    )

    @model_validator(mode="after")
    def _check_probes(self) -> Battery:
        unknown = [p for p in self.probes if p not in BATTERY_PROBES]
        if unknown:
            raise ValueError(
                f"battery.probes: unknown {unknown!r}; known: {', '.join(BATTERY_PROBES)}"
            )
        return self

    @property
    def pointwise(self) -> bool:
        return self.protocol in ("pointwise", "both")

    @property
    def pairwise(self) -> bool:
        return self.protocol in ("pairwise", "both")

    def planned_probes(self) -> tuple[str, ...]:
        """The chosen probes, or every probe the protocol supports (self_preference reads the
        pointwise verdicts; the others need pairwise comparisons)."""
        if self.probes:
            return tuple(self.probes)
        return tuple(
            p
            for p in BATTERY_PROBES
            if (self.pointwise if p == "self_preference" else self.pairwise)
        )


class AuditSpec(BaseModel):
    """An audit: items, judges, candidates, prompt, sampling, limits, budget and analysis."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    schema_version: Literal["1.0"] = SPEC_SCHEMA_VERSION
    name: str = Field(
        default="audit", max_length=MAX_NAME_LENGTH, description="A label for people."
    )
    bundle: str | None = Field(
        default=None, description="Path of an evaluation bundle (JSON/JSONL) to audit."
    )
    evaluation_id: str | None = Field(default=None, description="A stored evaluation's id.")
    simulation: EcosystemConfig | None = Field(
        default=None,
        description="A simulated world: its items are audited and `sim/<name>` models answer "
        "from it (offline, for demos and tests).",
    )
    simulated_provider: SimulatedProvider = Field(
        default_factory=SimulatedProvider,
        description="Behaviour of `sim/` models (latency, injected faults).",
    )
    judges: list[ModelSpec] = Field(min_length=1, description="The judges audited.")
    candidates: list[ModelSpec] = Field(
        default_factory=list,
        description="Candidates (judges are candidates too, except of themselves).",
    )
    judge_prompt: JudgePrompt = Field(default_factory=JudgePrompt)
    grader: ModelSpec | None = Field(
        default=None,
        description="A model that grades every free-form answer as correct, avoidant or "
        "incorrect, seeing the reference answer (three-way outcomes; Zhou et al. 2024).",
    )
    grader_prompt: GraderPrompt = Field(default_factory=GraderPrompt)
    prompt_variants: PromptVariants = Field(
        default_factory=PromptVariants,
        description="Extra MCQ and judge templates for prompt stability.",
    )
    sampling: Sampling = Field(default_factory=Sampling)
    limits: dict[str, ProviderLimits] = Field(
        default_factory=dict,
        description="Limits per limit key: a model's `api_base` URL when it names one (each "
        "server its own), else its provider key (e.g. `openai`, `sim`). Limits under a "
        "provider key also apply to that provider's calls on each server that has none of its "
        "own (a budget per provider and server).",
    )
    budget_usd: float | None = Field(
        default=None, ge=0, description="Stop scheduling calls when this much is spent."
    )
    deadline_seconds: float | None = Field(
        default=None,
        gt=0,
        le=366 * 86_400,
        description="Seconds after the audit starts running after which calls still failing "
        "with transient errors (rate limits, 5xx, timeouts) are given up and counted as "
        "failed. Without it the deployment's default applies (AUDITOR_DEFAULT_DEADLINE_SECONDS, "
        "24 h unless set; `none` there retries until they succeed).",
    )
    max_items: int | None = Field(default=None, ge=1, description="Audit only the first N items.")
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    battery: Battery = Field(
        default_factory=Battery,
        description="Judging protocol (pointwise, pairwise, both) and the battery probes planned.",
    )

    @field_validator("limits")
    @classmethod
    def _servers_without_trailing_slash(
        cls, limits: dict[str, ProviderLimits]
    ) -> dict[str, ProviderLimits]:
        """A server's limits are found by the server a model names (`ModelSpec.server`, no
        trailing slash): ``http://vllm:8000/v1/`` is that server too (before, its limits were
        silently not applied)."""
        normalized: dict[str, ProviderLimits] = {}
        for key, value in limits.items():
            server = key.rstrip("/") if "://" in key else key
            if server in normalized:
                raise ValueError(f"{key!r} names the same server as another key ({server!r})")
            normalized[server] = value
        return normalized

    @model_validator(mode="after")
    def _check(self) -> AuditSpec:
        sources = [s for s in (self.bundle, self.evaluation_id, self.simulation) if s is not None]
        if len(sources) != 1:
            raise ValueError(
                "exactly one of bundle, evaluation_id or simulation must give the items; got "
                f"{len(sources)}"
            )
        names = [m.display_name for m in self.all_models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {duplicates}")
        self.judge_prompt.resolve()
        self.grader_prompt.resolve()
        self.prompt_variants.mcq_templates()
        self.prompt_variants.judge_templates()
        return self

    @property
    def all_models(self) -> list[ModelSpec]:
        judges = {m.display_name for m in self.judges}
        return list(self.judges) + [m for m in self.candidates if m.display_name not in judges]

    def limit_key(self, model: ModelSpec) -> str:
        """Which limits the model's calls share (calls in flight, rpm/tpm buckets).

        - A model that names no `api_base`: its provider key.
        - One that does: the server, since each OpenAI-compatible server has its own capacity
          (two local servers must not share one budget)...
        - ...unless that server has no limits of its own and the model's provider key has:
          then that provider's calls on that server (``"<provider> at <server>"``), so that
          the provider's limits hold for its models even where models of other providers
          share the server (a proxy serving several providers).
        """
        server = model.server
        if server is None:
            return model.provider_key
        if server not in self.limits and model.provider_key in self.limits:
            return f"{model.provider_key} at {server}"
        return server

    def call_limits(self) -> dict[str, ProviderLimits]:
        """The limits of every limit key of the spec's models (`limit_key`), each complete:
        those given under the model's server, else under its provider key, else none; the
        calls in flight default by where the server is (`LOCAL_CONCURRENCY`,
        `HOSTED_CONCURRENCY`)."""
        resolved: dict[str, ProviderLimits] = {}
        for model in self.all_models:
            key = self.limit_key(model)
            if key in resolved:
                continue
            server = model.server
            given = self.limits.get(server) if server is not None else None
            given = given or self.limits.get(model.provider_key) or ProviderLimits()
            if given.max_concurrency is None:
                default = LOCAL_CONCURRENCY if model.is_local else HOSTED_CONCURRENCY
                given = given.model_copy(update={"max_concurrency": default})
            resolved[key] = given
        return resolved

    @property
    def candidate_models(self) -> list[ModelSpec]:
        """Everyone judged: the candidates and the judges (self-pairs are skipped)."""
        return self.all_models

    def public_dict(self) -> dict[str, Any]:
        """The spec as stored and reported (it holds no credentials by construction)."""
        return self.model_dump(mode="json")


def parse_spec(document: Any) -> AuditSpec:
    try:
        return AuditSpec.model_validate(document)
    except ValidationError as error:
        problems = [
            Problem(".".join(str(p) for p in e["loc"]) or "<spec>", e["msg"])
            for e in error.errors()
        ]
        raise SpecError(problems) from None


def load_spec(path: str | Path) -> AuditSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError([Problem(str(path), error.strerror or str(error))]) from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise SpecError([Problem(str(path), f"cannot be read: {error}")]) from None
    spec = parse_spec(document)
    if spec.bundle is not None and not Path(spec.bundle).is_absolute():
        spec = spec.model_copy(update={"bundle": str((path.parent / spec.bundle).resolve())})
    return spec
