"""A synthetic ecosystem of models with a planted truth: the world behind simulated models.

Pure and seeded. Items have a difficulty and a gold option. Models belong to families; a family
shares error tendencies (on each item it is drawn to the same wrong "trap" option), so models of
one family make similar mistakes, and CAPA between them is high. Each model answers every item
with a probability vector (softmax of logits) and chooses its argmax.

As a judge, a model sees a candidate's answer and accepts it (verdict 1) with probability::

    P(1) = (1 - s) * (p_hit if answer is gold else p_miss)
           +      s * (p_hit if answer is the judge's own choice else p_miss)

where ``s = affinity_strength`` is the planted affinity bias: at ``s = 0`` the judge grades by
the truth alone (with noise), so its scores depend on a candidate's accuracy and not on its
similarity to the judge; at ``s > 0`` it also rewards answers that agree with its own, which is
the mechanism Goel et al. (2025) describe.

Verdict randomness is keyed by (seed, judge, item, answer text), like a judge at temperature 0
that gives the same verdict to the same text whoever wrote it. Each model phrases its answers
in its own style, so two candidates' verdicts are independent draws even when they choose the
same option, and a verdict does not depend on the order in which it is asked for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from auditor.bundle import Bundle, Item, ModelInfo, Output, Verdict

__all__ = ["Ecosystem", "EcosystemConfig", "FamilyConfig", "JudgeWeakness"]

_LETTERS = "ABCDEFGHIJ"
_OPENERS = (
    "The answer is",
    "I believe it is",
    "It should be",
    "Answer:",
    "My answer:",
    "The correct option is",
    "That would be",
    "Most likely",
)
_CLOSERS = (".", "", " (final).", "!", " - confident.", " I think.", ", I'd say.", " ;)")
_WORDS = [
    "amber",
    "basil",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "indigo",
    "juniper",
    "kelp",
    "lumen",
    "marble",
    "nectar",
    "onyx",
    "pepper",
    "quartz",
    "raven",
    "saffron",
    "tundra",
    "umber",
    "velvet",
    "willow",
    "xenon",
    "yarrow",
    "zephyr",
]


class FamilyConfig(BaseModel):
    """A family of models that share error tendencies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Family name; models are named `<family>-<k>`.")
    size: int = Field(ge=1, description="Number of models in the family.")
    provider: str = Field(default="simlab", description="Provider reported for the models.")
    trap_strength: float = Field(
        default=1.2, ge=0, description="Pull of the family's shared wrong option (logit units)."
    )


class JudgeWeakness(BaseModel):
    """Planted weaknesses of one simulated judge (the battery's ground truth); 0 = none.

    Each is the probability that, in a call where it applies, the weakness decides the
    verdict instead of the content: ``position`` the first slot wins; ``verbosity`` the padded
    answer wins; ``self_preference`` the same-family answer wins (pairwise) or is accepted
    (pointwise); ``cue`` the cued answer wins; ``injection`` the injected answer wins;
    ``noise`` a repeated call (with a nonce) is decided afresh.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: float = Field(default=0.0, ge=0, le=1)
    verbosity: float = Field(default=0.0, ge=0, le=1)
    self_preference: float = Field(default=0.0, ge=0, le=1)
    cue: float = Field(default=0.0, ge=0, le=1)
    injection: float = Field(default=0.0, ge=0, le=1)
    noise: float = Field(default=0.0, ge=0, le=1)


class EcosystemConfig(BaseModel):
    """Everything that determines a synthetic ecosystem; equal configs give equal worlds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(default=0, description="Seed of every random draw.")
    n_items: int = Field(default=200, ge=1, description="Number of multiple-choice items.")
    n_options: int = Field(default=4, ge=2, le=10, description="Options per item (max).")
    ragged: bool = Field(
        default=False, description="Draw each item's option count from 2..n_options."
    )
    families: list[FamilyConfig] = Field(
        default_factory=lambda: [
            FamilyConfig(name=name, size=4) for name in ("atlas", "boreal", "cygnus", "draco")
        ],
        description="Model families.",
    )
    ability_range: tuple[float, float] = Field(
        default=(0.5, 4.5), description="Range of model abilities (logit units)."
    )
    own_trap_strength: float = Field(
        default=0.8, ge=0, description="Pull of each model's own idiosyncratic wrong option."
    )
    noise: float = Field(default=1.0, ge=0, description="Scale of per-option logit noise.")
    temperature: float = Field(default=1.0, gt=0, description="Softmax temperature.")
    judges: list[str] = Field(
        default_factory=list,
        description="Models that act as judges (default: the strongest model of each family).",
    )
    affinity_strength: float = Field(
        default=0.0, ge=0, le=1, description="Planted affinity bias s of every judge."
    )
    judge_affinity: dict[str, float] = Field(
        default_factory=dict, description="Per-judge override of affinity_strength."
    )
    p_hit: float = Field(default=0.9, ge=0, le=1, description="P(1) for a matching answer.")
    p_miss: float = Field(default=0.1, ge=0, le=1, description="P(1) for a non-matching answer.")
    judge_weaknesses: dict[str, JudgeWeakness] = Field(
        default_factory=dict,
        description="Planted battery weaknesses per judge (position, verbosity, self-preference, "
        "cue, injection, repeat noise); judges not named have none.",
    )


_NO_WEAKNESS = JudgeWeakness()


def _stable_uniform(*parts: object) -> float:
    """A uniform [0, 1) number determined by ``parts`` alone (not by call order)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True, eq=False)
class Ecosystem:
    """The realized world of an `EcosystemConfig` (computed once, then read-only)."""

    config: EcosystemConfig

    # --- items and models ------------------------------------------------------------------

    @cached_property
    def _rng_draws(self) -> dict[str, np.ndarray]:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        n_models = len(self.model_names)
        counts = (
            rng.integers(2, cfg.n_options + 1, size=cfg.n_items)
            if cfg.ragged
            else np.full(cfg.n_items, cfg.n_options)
        )
        gold = np.array([rng.integers(0, k) for k in counts])
        difficulty = rng.normal(0.0, 1.0, size=cfg.n_items)
        low, high = cfg.ability_range
        ability = np.concatenate(
            [np.sort(rng.uniform(low, high, size=f.size))[::-1] for f in cfg.families]
        )
        family_trap = np.stack(
            [self._wrong_options(rng, counts, gold) for _ in cfg.families]
        )  # (n_families, n_items)
        own_trap = np.stack([self._wrong_options(rng, counts, gold) for _ in range(n_models)])
        noise = rng.normal(0.0, 1.0, size=(n_models, cfg.n_items, cfg.n_options))
        return {
            "counts": counts,
            "gold": gold,
            "difficulty": difficulty,
            "ability": ability,
            "family_trap": family_trap,
            "own_trap": own_trap,
            "noise": noise,
        }

    @staticmethod
    def _wrong_options(
        rng: np.random.Generator, counts: np.ndarray, gold: np.ndarray
    ) -> np.ndarray:
        offset = rng.integers(1, counts)  # 1..k-1 steps away from gold: always a wrong option
        return (gold + offset) % counts

    @cached_property
    def model_names(self) -> tuple[str, ...]:
        return tuple(f"{f.name}-{k + 1}" for f in self.config.families for k in range(f.size))

    @cached_property
    def family_of(self) -> dict[str, str]:
        return {f"{f.name}-{k + 1}": f.name for f in self.config.families for k in range(f.size)}

    @cached_property
    def judge_names(self) -> tuple[str, ...]:
        if self.config.judges:
            unknown = [j for j in self.config.judges if j not in self.family_of]
            if unknown:
                raise ValueError(f"judges: unknown simulated models {unknown!r}")
            return tuple(self.config.judges)
        return tuple(f"{f.name}-1" for f in self.config.families)

    @cached_property
    def items(self) -> list[Item]:
        draws = self._rng_draws
        items = []
        for x in range(self.config.n_items):
            k = int(draws["counts"][x])
            words = [_WORDS[(x * 7 + o * 3) % len(_WORDS)] for o in range(k)]
            items.append(
                Item(
                    id=f"q{x:05d}",
                    question=f"Which of these is the designated token of puzzle {x}?",
                    options=[f"{words[o]} {x}-{_LETTERS[o]}" for o in range(k)],
                    gold=int(draws["gold"][x]),
                    difficulty=float(draws["difficulty"][x]),
                    category="synthetic",
                )
            )
        return items

    @cached_property
    def models(self) -> list[ModelInfo]:
        providers = {f.name: f.provider for f in self.config.families}
        return [
            ModelInfo(name=name, provider=providers[family], family=family)
            for name, family in self.family_of.items()
        ]

    # --- answers -----------------------------------------------------------------------------

    @cached_property
    def probabilities(self) -> np.ndarray:
        """(n_models, n_items, n_options) answer probabilities (0 past an item's options)."""
        cfg, draws = self.config, self._rng_draws
        n_models = len(self.model_names)
        options = np.arange(cfg.n_options)
        gold_mask = options[None, :] == draws["gold"][:, None]  # (items, options)
        skill = draws["ability"][:, None] - draws["difficulty"][None, :]  # (models, items)
        logits = cfg.noise * draws["noise"] + skill[:, :, None] * gold_mask[None]
        family_index = np.repeat(np.arange(len(cfg.families)), [f.size for f in cfg.families])
        trap_strength = np.array([cfg.families[f].trap_strength for f in family_index])
        family_trap = draws["family_trap"][family_index]  # (models, items)
        logits += trap_strength[:, None, None] * (options[None, None, :] == family_trap[:, :, None])
        logits += cfg.own_trap_strength * (options[None, None, :] == draws["own_trap"][:, :, None])
        logits = logits / cfg.temperature
        valid = options[None, :] < draws["counts"][:, None]
        logits = np.where(valid[None], logits, -np.inf)
        logits -= logits.max(axis=2, keepdims=True)
        weights = np.exp(logits)
        probs = weights / weights.sum(axis=2, keepdims=True)
        assert probs.shape == (n_models, cfg.n_items, cfg.n_options)
        return probs

    @cached_property
    def choices(self) -> np.ndarray:
        """(n_models, n_items) chosen option: the argmax (ties to the lowest index)."""
        return np.argmax(self.probabilities, axis=2)

    def _model_index(self, model: str) -> int:
        try:
            return self.model_names.index(model)
        except ValueError:
            raise KeyError(f"unknown simulated model {model!r}") from None

    def _item_index(self, item_id: str) -> int:
        if not (item_id.startswith("q") and item_id[1:].isdigit()):
            raise KeyError(f"unknown simulated item {item_id!r}")
        index = int(item_id[1:])
        if index >= self.config.n_items:
            raise KeyError(f"unknown simulated item {item_id!r}")
        return index

    def mcq_probs(self, model: str, item_id: str) -> np.ndarray:
        x = self._item_index(item_id)
        return self.probabilities[self._model_index(model), x, : self._rng_draws["counts"][x]]

    def choice(self, model: str, item_id: str) -> int:
        return int(self.choices[self._model_index(model), self._item_index(item_id)])

    def answer_text(self, model: str, item_id: str) -> str:
        """The model's free-form answer: the text of the option it chooses, in its own style
        (an opener, a closer and, past 64 models, a numbered style tag: unique per model)."""
        item = self.items[self._item_index(item_id)]
        style = self._model_index(model)
        opener = _OPENERS[style % len(_OPENERS)]
        closer = _CLOSERS[(style // len(_OPENERS)) % len(_CLOSERS)]
        cycle = style // (len(_OPENERS) * len(_CLOSERS))
        tag = f" [style {cycle}]" if cycle else ""
        return f"{opener} {item.options[self.choice(model, item_id)]}{closer}{tag}"

    @cached_property
    def accuracies(self) -> dict[str, float]:
        gold = self._rng_draws["gold"]
        return {
            name: float(np.mean(self.choices[m] == gold)) for m, name in enumerate(self.model_names)
        }

    # --- judging ----------------------------------------------------------------------------

    def affinity_of(self, judge: str) -> float:
        return self.config.judge_affinity.get(judge, self.config.affinity_strength)

    def accept_probability(self, judge: str, item_id: str, answered_option: int | None) -> float:
        """P(verdict 1) for an answer naming ``answered_option`` (None: no recognizable option)."""
        cfg = self.config
        x = self._item_index(item_id)
        if answered_option is None:
            return cfg.p_miss
        truth = cfg.p_hit if answered_option == self._rng_draws["gold"][x] else cfg.p_miss
        own = cfg.p_hit if answered_option == self.choice(judge, item_id) else cfg.p_miss
        s = self.affinity_of(judge)
        return (1.0 - s) * truth + s * own

    def verdict(self, judge: str, item_id: str, answer: str) -> int:
        """The judge's deterministic verdict (1 or 0) on a free-form answer to an item."""
        p = self.accept_probability(judge, item_id, self.option_in_text(item_id, answer))
        bonus = self.weakness_of(judge).self_preference
        if bonus and self._is_kin(judge, item_id, answer):
            p = min(1.0, p + bonus)
        return int(_stable_uniform(self.config.seed, judge, item_id, answer) < p)

    # --- the battery's planted weaknesses (pairwise judging) ---------------------------------

    def weakness_of(self, judge: str) -> JudgeWeakness:
        return self.config.judge_weaknesses.get(judge, _NO_WEAKNESS)

    def _author_of(self, item_id: str, text: str) -> str | None:
        """The model whose styled answer ``text`` contains (None for an injected text)."""
        for model in self.model_names:
            if self.answer_text(model, item_id) in text:
                return model
        return None

    def _is_kin(self, judge: str, item_id: str, text: str) -> bool:
        author = self._author_of(item_id, text)
        return author is not None and self.family_of.get(author) == self.family_of.get(judge)

    def pairwise_winner(
        self, judge: str, item_id: str, answer_a: str, answer_b: str, nonce: str | None = None
    ) -> str:
        """The judge's deterministic pairwise reply, "A", "B" or "tie".

        Draws are keyed by the answers' content with padding and cues removed, so a cued or
        padded comparison differs from its original only through the planted weakness, and a
        nonce changes the draw only with probability ``noise``. In order: an injected answer
        (naming no option) wins with P(injection), a cued one with P(cue), a padded one with
        P(verbosity), a same-family one with P(self_preference); else a real answer beats an
        injected one; else the first slot wins with P(position); otherwise the right answer wins
        with P(p_hit), and two answers naming the same option are a coin flip.
        """
        from auditor.probes.cues import CUES  # the battery's perturbations, to perceive them
        from auditor.probes.verbosity import FILLERS, PREAMBLES, RESTATE_MARKER

        weakness = self.weakness_of(judge)

        def core(text: str) -> tuple[str, bool, bool]:
            cued = padded = False
            for cue in CUES.values():
                if cue in text:
                    text, cued = text.replace(cue, ""), True
            if RESTATE_MARKER in text:
                text, padded = text.split(RESTATE_MARKER)[0], True
            for filler in (*PREAMBLES, *FILLERS):
                if filler in text:
                    text, padded = text.replace(filler, ""), True
            return text.strip(), cued, padded

        core_a, cued_a, padded_a = core(answer_a)
        core_b, cued_b, padded_b = core(answer_b)
        key: tuple[object, ...] = (self.config.seed, judge, item_id, core_a, core_b)
        if nonce is not None and _stable_uniform(*key, nonce, "noise") < weakness.noise:
            key = (*key, nonce)

        def draw(name: str) -> float:
            return _stable_uniform(*key, name)

        option_a = self.option_in_text(item_id, core_a)
        option_b = self.option_in_text(item_id, core_b)
        for (flag_a, flag_b), strength, name in (
            ((option_a is None, option_b is None), weakness.injection, "injection"),
            ((cued_a, cued_b), weakness.cue, "cue"),
            ((padded_a, padded_b), weakness.verbosity, "verbosity"),
            (
                (self._is_kin(judge, item_id, core_a), self._is_kin(judge, item_id, core_b)),
                weakness.self_preference,
                "self",
            ),
        ):
            if flag_a != flag_b and draw(name) < strength:
                return "A" if flag_a else "B"
        if option_a is None and option_b is None:
            return "tie"
        if option_a is None or option_b is None:  # a real answer against an injected one
            return "B" if option_a is None else "A"
        if draw("position") < weakness.position:
            return "A"
        gold = int(self._rng_draws["gold"][self._item_index(item_id)])
        right_a, right_b = option_a == gold, option_b == gold
        if right_a == right_b:
            return "A" if draw("coin") < 0.5 else "B"
        better, worse = ("A", "B") if right_a else ("B", "A")
        return better if draw("content") < self.config.p_hit else worse

    def option_in_text(self, item_id: str, text: str) -> int | None:
        """Which option of the item a free-form answer names (None if none or several)."""
        item = self.items[self._item_index(item_id)]
        found = [o for o, option in enumerate(item.options) if option in text]
        return found[0] if len(found) == 1 else None

    def item_for_question(self, text: str) -> str | None:
        """The id of the item whose question appears in ``text`` (for simulated judges)."""
        marker = "designated token of puzzle "
        start = text.find(marker)
        if start < 0:
            return None
        digits = ""
        for ch in text[start + len(marker) :]:
            if not ch.isdigit():
                break
            digits += ch
        if not digits or int(digits) >= self.config.n_items:
            return None
        return f"q{int(digits):05d}"

    # --- the whole world as a bundle ---------------------------------------------------------

    def bundle(self, *, with_verdicts: bool = True, candidates: list[str] | None = None) -> Bundle:
        """The ecosystem as an evaluation bundle (every model on every item; verdicts of the
        judges on every candidate, self-pairs included)."""
        candidates = list(candidates or self.model_names)
        outputs = [
            Output(
                model=name,
                item=item.id,
                probs=self.probabilities[m, x, : len(item.options)].tolist(),
                choice=int(self.choices[m, x]),
                response=self.answer_text(name, item.id),
            )
            for m, name in enumerate(self.model_names)
            for x, item in enumerate(self.items)
        ]
        verdicts = []
        if with_verdicts:
            for judge in self.judge_names:
                for candidate in candidates:
                    for item in self.items:
                        answer = self.answer_text(candidate, item.id)
                        verdicts.append(
                            Verdict(
                                judge=judge,
                                candidate=candidate,
                                item=item.id,
                                verdict=self.verdict(judge, item.id, answer),  # type: ignore[arg-type]
                                raw=None,
                            )
                        )
        return Bundle(items=self.items, models=self.models, outputs=outputs, verdicts=verdicts)
