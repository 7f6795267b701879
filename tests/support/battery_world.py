"""A statistics-level world with planted judge weaknesses, for the battery probes' tests.

It writes bundle records directly (no prompts, no provider): each judge decides every
comparison from a per-call uniform draw, so a placebo repeat reproduces its original except
with probability ``noise`` and a cue or a padded copy changes the decision only through the
planted weakness. The decisions, per judge:
- an injected answer wins with probability ``injection``;
- a cued answer wins with probability ``cue``, else the uncued decision stands;
- a padded copy facing its original wins with probability ``verbosity``, else a fair coin
  (or the first slot, with probability ``position``);
- otherwise the first slot wins with probability ``position``, else the better answer wins with
  probability ``skill``.
Pointwise verdicts pass a correct answer with probability 0.8 and an incorrect one with 0.25,
plus ``self_bonus`` for the judge's kin (same family).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auditor.probes import REGISTRY, ProbeContext
from auditor.probes.cues import CUES
from auditor.probes.injection import INJECTIONS
from auditor.schemas.bundle import Bundle, Comparison, HumanChoice, Item, ModelInfo, Output, Verdict
from auditor.schemas.result import AnalysisSettings

CANDIDATES = ("m1", "m2", "m3", "m4")
FAMILY = {"m1": "alpha", "m2": "beta", "m3": "gamma", "m4": "delta"}


@dataclass(frozen=True)
class Planted:
    position: float = 0.0
    verbosity: float = 0.5
    cue: float = 0.0
    injection: float = 0.0
    noise: float = 0.0
    skill: float = 0.85
    self_bonus: float = 0.0
    family: str = "alpha"


PARTS = frozenset({"pairs", "placebo", "cues", "padding", "injection", "verdicts"})
PARTS_OF_PROBE = {
    "position": {"pairs"},
    "verbosity": {"padding"},
    "self_preference": {"verdicts"},
    "cues": {"pairs", "placebo", "cues"},
    "injection": {"injection"},
    "repeat": {"pairs", "placebo"},
    "human_agreement": {"pairs"},
}


def simulate(
    judges: dict[str, Planted],
    n_items: int,
    seed: int,
    humans: int = 3,
    parts: frozenset[str] | set[str] = PARTS,
) -> Bundle:
    """A bundle of the records in ``parts`` (the draws are the same whatever is kept)."""
    rng = np.random.default_rng(seed)

    def add(part: str, **fields) -> None:
        if part in parts:
            comparisons.append(Comparison(raw="", **fields))

    items = [
        Item(id=f"q{i}", question=f"Question {i}?", options=["A", "B", "C", "D"], gold=0)
        for i in range(n_items)
    ]
    models = [ModelInfo(name=c, family=FAMILY[c]) for c in CANDIDATES]
    models += [ModelInfo(name=j, family=p.family) for j, p in judges.items()]
    correct = rng.random((len(CANDIDATES), n_items)) < 0.6
    outputs = [
        Output(model=c, item=f"q{i}", choice=0 if correct[k, i] else 1, response="x" * 40)
        for k, c in enumerate(CANDIDATES)
        for i in range(n_items)
    ]
    comparisons: list = []
    verdicts: list = []
    cue_names = sorted(CUES)
    injection_names = sorted(INJECTIONS)
    for judge, planted in judges.items():
        kin = {c for c in CANDIDATES if FAMILY[c] == planted.family}
        for i in range(n_items):
            item = f"q{i}"
            x, y = rng.choice(len(CANDIDATES), size=2, replace=False)
            better = CANDIDATES[x]  # the planted better answer of the pair
            worse = CANDIDATES[y]
            human_better = rng.random(humans) < 0.9
            human = (
                [
                    HumanChoice(annotator=f"h{h}", choice=better if human_better[h] else worse)
                    for h in range(humans)
                ]
                if "pairs" in parts
                else []
            )

            def decide(
                first: str, u: float, v: float, planted=planted, better=better, worse=worse
            ) -> str:
                if u < planted.position:
                    return first
                return better if v < planted.skill else worse

            for first, second in ((better, worse), (worse, better)):
                u, v = rng.random(), rng.random()
                winner = decide(first, u, v)
                add(
                    "pairs",
                    judge=judge,
                    item=item,
                    candidate_a=first,
                    candidate_b=second,
                    winner=winner,
                    gold=better,
                    human=human,
                )
                if first == better:
                    # placebo repeat: same draw unless noise strikes
                    if rng.random() < planted.noise:
                        u, v = rng.random(), rng.random()
                    repeat = decide(first, u, v)
                    placebo = f"{first}::placebo:1"
                    add(
                        "placebo",
                        judge=judge,
                        item=item,
                        candidate_a=placebo,
                        candidate_b=second,
                        winner=placebo if repeat == first else second,
                    )
                    # a cue on the worse answer (shown second): the same draw unless noise
                    # strikes, then the cue wins with probability `cue`
                    if rng.random() < planted.noise:
                        u, v = rng.random(), rng.random()
                    uncued = decide(first, u, v)
                    cued = f"{second}::cue:{cue_names[i % len(cue_names)]}"
                    moved = rng.random() < planted.cue
                    add(
                        "cues",
                        judge=judge,
                        item=item,
                        candidate_a=first,
                        candidate_b=cued,
                        winner=cued if moved or uncued == second else first,
                    )
            # padded copy vs its original, both orders
            padded = f"{better}::pad:restate"
            for first, second in ((better, padded), (padded, better)):
                if rng.random() < planted.position:
                    winner = first
                elif rng.random() < planted.verbosity:
                    winner = padded
                else:
                    winner = better
                add(
                    "padding",
                    judge=judge,
                    item=item,
                    candidate_a=first,
                    candidate_b=second,
                    winner=winner,
                )
            # an injected answer vs a real one, both orders
            injected = f"::inject:{injection_names[i % len(injection_names)]}"
            for first, second in ((injected, worse), (worse, injected)):
                wins = rng.random() < planted.injection
                add(
                    "injection",
                    judge=judge,
                    item=item,
                    candidate_a=first,
                    candidate_b=second,
                    winner=injected if wins else worse,
                )
            # pointwise verdicts on every candidate
            for k, candidate in enumerate(CANDIDATES):
                p = 0.8 if correct[k, i] else 0.25
                if candidate in kin:
                    p = min(1.0, p + planted.self_bonus)
                draw = rng.random()
                if "verdicts" not in parts:
                    continue
                verdicts.append(
                    Verdict(
                        judge=judge,
                        candidate=candidate,
                        item=item,
                        verdict=int(draw < p),
                    )
                )
    if "verdicts" not in parts:
        outputs = []
    return Bundle.model_construct(
        schema_version="1.0",
        items=items,
        models=models,
        outputs=outputs,
        verdicts=verdicts,
        comparisons=comparisons,
    )


def findings(bundle: Bundle, probe_name: str, alpha: float = 0.05) -> dict:
    probe = next(p for p in REGISTRY if p.name == probe_name)
    context = ProbeContext(
        bundle=bundle, settings=AnalysisSettings(alpha=alpha), rng=np.random.default_rng(0)
    )
    return {f.judge: f for f in probe.compute(context).findings}
