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

Reliability (Zhou et al., Nature 2024), all off by default: a model avoids ("I don't know") an
item it would answer wrongly with a probability that rises with difficulty and falls with the
model's size (``avoidance``: larger models avoid less and so err more); a judge's false
approval (P(1) on a non-gold answer) can rise on easy items (``false_approval_slope``); a
template variant other than the primary shifts a model's gold logit, or a judge's P(1), by a
planted amount (``prompt_sensitivity``). Models carry a planted size (``params``) that grows
with their ability.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from auditor.schemas.bundle import (
    Bundle,
    Item,
    Label,
    ModelInfo,
    Outcome,
    Output,
    ResponseMatrix,
    Verdict,
)
from auditor.schemas.simulation import EcosystemConfig, FamilyConfig, JudgeWeakness

__all__ = [
    "Ecosystem",
    "EcosystemConfig",
    "ErrorWorld",
    "ErrorWorldConfig",
    "FamilyConfig",
    "JudgeWeakness",
]

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


_NO_WEAKNESS = JudgeWeakness()


def _stable_uniform(*parts: object) -> float:
    """A uniform [0, 1) number determined by ``parts`` alone (not by call order)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _stable_normal(*parts: object) -> float:
    """A standard normal number determined by ``parts`` alone."""
    u = min(max(_stable_uniform(*parts), 1e-12), 1 - 1e-12)
    return NormalDist().inv_cdf(u)


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


_AVOIDANT = (
    "I don't know.",
    "I'm not sure; I cannot answer that.",
    "I cannot determine the answer.",
    "Sorry, I do not have enough information to answer.",
)


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
            ModelInfo(
                name=name, provider=providers[family], family=family, params=self.params_of[name]
            )
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
        if cfg.provider_trap_strength > 0:
            provider_trap = self._provider_traps[self._provider_index]  # (models, items)
            logits += cfg.provider_trap_strength * (
                options[None, None, :] == provider_trap[:, :, None]
            )
        logits = logits / cfg.temperature
        valid = options[None, :] < draws["counts"][:, None]
        logits = np.where(valid[None], logits, -np.inf)
        logits -= logits.max(axis=2, keepdims=True)
        weights = np.exp(logits)
        probs = weights / weights.sum(axis=2, keepdims=True)
        assert probs.shape == (n_models, cfg.n_items, cfg.n_options)
        return probs

    @cached_property
    def _provider_index(self) -> np.ndarray:
        """Provider number of each model (in order of first appearance)."""
        providers = [self.provider_of[name] for name in self.model_names]
        order = list(dict.fromkeys(providers))
        return np.array([order.index(p) for p in providers])

    @cached_property
    def _provider_traps(self) -> np.ndarray:
        """(n_providers, n_items) wrong option each provider's models are drawn to.

        From a stream of its own (seeded by the config's seed), so adding it leaves every
        other draw of the world unchanged."""
        draws = self._rng_draws
        rng = np.random.default_rng([self.config.seed, 0x70726F76])
        n_providers = int(self._provider_index.max()) + 1
        return np.stack(
            [self._wrong_options(rng, draws["counts"], draws["gold"]) for _ in range(n_providers)]
        )

    @cached_property
    def provider_of(self) -> dict[str, str]:
        providers = {f.name: f.provider for f in self.config.families}
        return {name: providers[family] for name, family in self.family_of.items()}

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

    def choice(self, model: str, item_id: str) -> int:
        return int(self.choices[self._model_index(model), self._item_index(item_id)])

    def answer_text(self, model: str, item_id: str) -> str:
        """The model's free-form answer: the text of the option it chooses, in its own style
        (an opener, a closer and, past 64 models, a numbered style tag: unique per model)."""
        item = self.items[self._item_index(item_id)]
        style = self._model_index(model)
        if self.avoids(model, item_id):
            return _AVOIDANT[style % len(_AVOIDANT)]
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
        """P(verdict 1) for an answer naming ``answered_option`` (None: no recognizable option).

        ``p_miss`` is the judge's false approval at this item's difficulty (`false_approval`).
        """
        cfg = self.config
        x = self._item_index(item_id)
        p_miss = self.false_approval(judge, item_id)
        if answered_option is None:
            return p_miss
        truth = cfg.p_hit if answered_option == self._rng_draws["gold"][x] else p_miss
        own = cfg.p_hit if answered_option == self.choice(judge, item_id) else p_miss
        s = self.affinity_of(judge)
        return (1.0 - s) * truth + s * own

    def _inflated(self, judge: str, candidate: str | None, p: float) -> float:
        d = self.config.same_provider_inflation
        if d == 0 or candidate is None or self.provider_of[candidate] != self.provider_of[judge]:
            return p
        return p + d * (1.0 - p)

    def candidate_of(self, item_id: str, answer: str) -> str | None:
        """The model whose free-form answer to the item is ``answer`` (styles are unique per
        model), None if no model wrote it."""
        return self._answers_of_item(self._item_index(item_id)).get(answer)

    def _answers_of_item(self, x: int) -> dict[str, str]:
        cache = self._answer_cache
        if x not in cache:
            item_id = self.items[x].id
            cache[x] = {self.answer_text(m, item_id): m for m in self.model_names}
        return cache[x]

    @cached_property
    def _answer_cache(self) -> dict[int, dict[str, str]]:
        return {}

    def verdict(self, judge: str, item_id: str, answer: str, variant: str | None = None) -> int:
        """The judge's deterministic verdict (1 or 0) on a free-form answer to an item, under
        the primary judge template (``variant`` None) or a template variant, which shifts the
        judge's P(1) by its planted prompt sensitivity (`prompt_shift`); the uniform draw is
        the same under every template, so a verdict flips only where the shift crosses it."""
        p = self.accept_probability(judge, item_id, self.option_in_text(item_id, answer))
        bonus = self.weakness_of(judge).self_preference
        if bonus and self._is_kin(judge, item_id, answer):
            p = min(1.0, p + bonus)
        shift = self.prompt_shift(judge, item_id, variant)
        if shift:
            p = _sigmoid(_logit(p) + shift)
        if self.config.same_provider_inflation > 0:
            p = self._inflated(judge, self.candidate_of(item_id, answer), p)
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

    def verdict_array(self, judges: list[str], candidates: list[str]) -> np.ndarray:
        """(judges, candidates, items) verdicts, equal to `verdict` on each candidate's own
        answer text, with the probabilities vectorized (only the keyed uniforms loop)."""
        cfg = self.config
        judge_rows = np.array([self._model_index(j) for j in judges], dtype=np.int64)
        candidate_rows = np.array([self._model_index(c) for c in candidates], dtype=np.int64)
        gold = self._rng_draws["gold"]
        answered = self.choices[candidate_rows]  # (candidates, items)
        if cfg.avoidance > 0:  # an avoidant answer names no option (-1): graded at p_miss
            avoided = np.array(
                [[self.avoids(c, item.id) for item in self.items] for c in candidates]
            )
            answered = np.where(avoided, -1, answered)
        p_miss = self._false_approval_array(judges)[:, None, :]  # (judges, 1, items)
        truth = np.where(answered[None, :, :] == gold[None, None, :], cfg.p_hit, p_miss)
        judge_choice = self.choices[judge_rows][:, None, :]
        own = np.where(answered[None, :, :] == judge_choice, cfg.p_hit, p_miss)
        strength = np.array([self.affinity_of(j) for j in judges])[:, None, None]
        p = (1.0 - strength) * truth + strength * own
        bonus = np.array([self.weakness_of(j).self_preference for j in judges])[:, None, None]
        if bonus.any():  # the planted self-preference, as `verdict` applies it
            kin = np.array(
                [[self.family_of[j] == self.family_of[c] for c in candidates] for j in judges]
            )[:, :, None]
            p = np.where(kin, np.minimum(1.0, p + bonus), p)
        if cfg.same_provider_inflation > 0:
            same = np.array(
                [[self.provider_of[j] == self.provider_of[c] for c in candidates] for j in judges]
            )[:, :, None]
            p = np.where(same, p + cfg.same_provider_inflation * (1.0 - p), p)
        item_ids = [item.id for item in self.items]
        texts = [[self.answer_text(c, x) for x in item_ids] for c in candidates]
        uniform = np.array(
            [
                [
                    [
                        _stable_uniform(cfg.seed, j, x, text)
                        for x, text in zip(item_ids, row, strict=True)
                    ]
                    for row in texts
                ]
                for j in judges
            ]
        ).reshape(p.shape)
        return (uniform < p).astype(np.int8)

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

    def bundle(
        self,
        *,
        with_verdicts: bool = True,
        candidates: list[str] | None = None,
        with_labels: bool = False,
        mcq_variants: tuple[str, ...] = (),
        judge_variants: tuple[str, ...] = (),
    ) -> Bundle:
        """The ecosystem as an evaluation bundle (every model on every item; verdicts of the
        judges on every candidate, self-pairs included). ``with_labels`` adds the planted
        three-way outcome of every free-form answer (source ``planted``); ``mcq_variants`` and
        ``judge_variants`` add outputs and verdicts under those template variants."""
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
        answers = {
            (candidate, item.id): self.answer_text(candidate, item.id)
            for candidate in (candidates if with_verdicts else ())
            for item in self.items
        }  # each answer once, not once per judge
        if with_verdicts:
            judged = self.verdict_array(list(self.judge_names), candidates)
            for j, judge in enumerate(self.judge_names):
                for c, candidate in enumerate(candidates):
                    for x, item in enumerate(self.items):
                        verdicts.append(
                            Verdict(
                                judge=judge,
                                candidate=candidate,
                                item=item.id,
                                verdict=int(judged[j, c, x]),  # type: ignore[arg-type]
                                raw=None,
                            )
                        )
        outputs += [
            Output(
                model=name,
                item=item.id,
                probs=(probs := self.mcq_probs(name, item.id, variant)).tolist(),
                choice=int(np.argmax(probs)),
                variant=variant,
            )
            for variant in mcq_variants
            for name in self.model_names
            for item in self.items
        ]
        if with_verdicts:
            verdicts += [
                Verdict(
                    judge=judge,
                    candidate=candidate,
                    item=item.id,
                    verdict=self.verdict(  # type: ignore[arg-type]
                        judge, item.id, answers[(candidate, item.id)], variant
                    ),
                    variant=variant,
                )
                for variant in judge_variants
                for judge in self.judge_names
                for candidate in candidates
                for item in self.items
            ]
        labels = (
            [
                Label(
                    item=item.id,
                    candidate=name,
                    outcome=self.outcome(name, item.id),
                    annotator="simulation",
                    source="planted",
                )
                for name in candidates
                for item in self.items
            ]
            if with_labels
            else []
        )
        return Bundle(
            items=self.items,
            models=self.models,
            outputs=outputs,
            verdicts=verdicts,
            labels=labels,
        )

    # --- reliability across difficulty and prompts (Zhou et al., Nature 2024) -------------

    @cached_property
    def params_of(self) -> dict[str, float]:
        """Planted size (billions of parameters) of each model: 10^(0.5 + ability / 2), so
        stronger models are larger (abilities 0.5..4.5 give about 6B..560B)."""
        ability = self._rng_draws["ability"]
        return {
            name: round(float(10 ** (0.5 + ability[m] / 2)), 1)
            for m, name in enumerate(self.model_names)
        }

    @cached_property
    def _ability_z(self) -> np.ndarray:
        ability = self._rng_draws["ability"]
        spread = float(np.std(ability))
        return (ability - ability.mean()) / spread if spread > 0 else np.zeros_like(ability)

    def avoidance_probability(self, model: str, item_id: str) -> float:
        """P(the model avoids the item) when its answer would be wrong (0 when right):
        sigmoid(logit(avoidance) − scale_slope · z_ability + difficulty_slope · difficulty)."""
        cfg = self.config
        m, x = self._model_index(model), self._item_index(item_id)
        if cfg.avoidance == 0 or self.choices[m, x] == self._rng_draws["gold"][x]:
            return 0.0
        return _sigmoid(
            _logit(cfg.avoidance)
            - cfg.avoidance_scale_slope * float(self._ability_z[m])
            + cfg.avoidance_difficulty_slope * float(self._rng_draws["difficulty"][x])
        )

    def avoids(self, model: str, item_id: str) -> bool:
        """Whether the model's free-form answer to the item is avoidant (planted)."""
        p = self.avoidance_probability(model, item_id)
        return p > 0 and _stable_uniform(self.config.seed, "avoid", model, item_id) < p

    def outcome(self, model: str, item_id: str) -> Outcome:
        """The planted three-way outcome of the model's free-form answer to the item."""
        if self.avoids(model, item_id):
            return "avoidant"
        m, x = self._model_index(model), self._item_index(item_id)
        return "correct" if self.choices[m, x] == self._rng_draws["gold"][x] else "incorrect"

    def false_approval(self, judge: str, item_id: str) -> float:
        """P(1) of the judge on a non-gold answer to the item:
        sigmoid(logit(p_miss) − slope · difficulty); p_miss itself when the slope is 0."""
        cfg = self.config
        slope = cfg.judge_false_approval_slope.get(judge, cfg.false_approval_slope)
        if slope == 0:
            return cfg.p_miss
        difficulty = float(self._rng_draws["difficulty"][self._item_index(item_id)])
        return _sigmoid(_logit(cfg.p_miss) - slope * difficulty)

    def _false_approval_array(self, judges: list[str]) -> np.ndarray:
        """(judges, items) `false_approval`, vectorized."""
        cfg = self.config
        slopes = np.array(
            [cfg.judge_false_approval_slope.get(j, cfg.false_approval_slope) for j in judges]
        )
        difficulty = self._rng_draws["difficulty"]
        base = _logit(cfg.p_miss)
        shifted = 1.0 / (1.0 + np.exp(-(base - slopes[:, None] * difficulty[None, :])))
        return np.where(slopes[:, None] == 0, cfg.p_miss, shifted)

    def sensitivity_of(self, model: str) -> float:
        return self.config.model_prompt_sensitivity.get(model, self.config.prompt_sensitivity)

    def prompt_shift(self, model: str, item_id: str, variant: str | None) -> float:
        """Logit shift a template variant gives the model on the item: sensitivity times the
        sum of a per-(model, variant) and a per-(model, variant, item) standard normal draw;
        0 under the primary template or with no planted sensitivity."""
        sensitivity = self.sensitivity_of(model)
        if variant is None or sensitivity == 0:
            return 0.0
        seed = self.config.seed
        return sensitivity * (
            _stable_normal(seed, "prompt", model, variant)
            + _stable_normal(seed, "prompt", model, variant, item_id)
        )

    def mcq_probs(self, model: str, item_id: str, variant: str | None = None) -> np.ndarray:
        """The model's option probabilities on the item, under the primary MCQ template
        (``variant`` None) or a variant, which shifts the gold option's logit (`prompt_shift`)."""
        x = self._item_index(item_id)
        probs = self.probabilities[self._model_index(model), x, : self._rng_draws["counts"][x]]
        shift = self.prompt_shift(model, item_id, variant)
        if not shift:
            return probs
        logits = np.log(np.maximum(probs, 1e-300))
        logits[int(self._rng_draws["gold"][x])] += shift
        weights = np.exp(logits - logits.max())
        return np.asarray(weights / weights.sum())


# --- a world with an exactly known error-agreement structure (Kim et al. 2025) -----------------


class ErrorWorldConfig(BaseModel):
    """A choice-only world whose both-wrong agreement by pair type is known in closed form.

    Model m answers item x correctly with probability sigmoid(ability_m - difficulty_x). A wrong
    answer is model m's own trap with probability r_m (r_m ~ U(own_pull_range), a model-level
    random effect), else its family's trap with probability ``family_pull``, else its provider's
    trap with probability ``provider_pull``, else a uniformly drawn wrong option. Traps are
    uniform over an item's wrong options, independent across items and across models, families
    and providers. Which wrong option is chosen does not depend on accuracy, so the population
    regression of Kim et al. has zero accuracy coefficients and the type effects of
    `ErrorWorld.true_effects`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(default=0, description="Seed of every draw.")
    n_items: int = Field(default=2000, ge=1, description="Items.")
    n_options: int = Field(default=4, ge=3, le=10, description="Options per item.")
    n_providers: int = Field(default=4, ge=1, description="Providers.")
    families_per_provider: int = Field(default=2, ge=1, description="Families per provider.")
    models_per_family: int = Field(default=2, ge=1, description="Models per family.")
    ability_range: tuple[float, float] = Field(default=(-0.5, 1.5), description="Abilities.")
    own_pull_range: tuple[float, float] = Field(
        default=(0.0, 0.4), description="Range of each model's pull r_m to its own trap."
    )
    family_pull: float = Field(default=0.3, ge=0, le=1, description="Pull to the family trap.")
    provider_pull: float = Field(
        default=0.2, ge=0, le=1, description="Pull to the provider trap (0 = no provider effect)."
    )


def _mixture_agreement(
    n_wrong: int, shared_family: bool, shared_provider: bool, q_f: float, q_p: float
) -> float:
    """E over uniform traps of sum_o Q_a(o) Q_b(o), Q = q_f d_F + (1-q_f) q_p d_T + rest uniform.

    Exact enumeration of the traps of the two models (at most four independent uniform draws
    over the n_wrong wrong options)."""
    rest = (1.0 - q_f) * (1.0 - q_p) / n_wrong
    traps = np.arange(n_wrong)
    # Trap slots: F_a, T_a, F_b, T_b; shared slots reuse the same draw.
    slots = ["Fa", "Ta", "Fa" if shared_family else "Fb", "Ta" if shared_provider else "Tb"]
    names = sorted(set(slots))
    grids = np.meshgrid(*[traps] * len(names), indexing="ij")
    value = {name: grid.reshape(-1) for name, grid in zip(names, grids, strict=True)}
    onehot = np.eye(n_wrong)

    def q(f: str, t: str) -> np.ndarray:
        return q_f * onehot[value[f]] + (1 - q_f) * q_p * onehot[value[t]] + rest

    qa, qb = q(slots[0], slots[1]), q(slots[2], slots[3])
    return float(np.mean(np.sum(qa * qb, axis=1)))


@dataclass(frozen=True, eq=False)
class ErrorWorld:
    """The realized `ErrorWorldConfig`: choices of every model on every item (vectorized)."""

    config: ErrorWorldConfig

    @cached_property
    def model_names(self) -> tuple[str, ...]:
        return tuple(f"p{p}-f{f}-m{m}" for p, f, m in self._structure)

    @cached_property
    def _structure(self) -> list[tuple[int, int, int]]:
        cfg = self.config
        return [
            (p, f, m)
            for p in range(cfg.n_providers)
            for f in range(cfg.families_per_provider)
            for m in range(cfg.models_per_family)
        ]

    @cached_property
    def provider(self) -> tuple[str, ...]:
        return tuple(f"provider{p}" for p, _, _ in self._structure)

    @cached_property
    def family(self) -> tuple[str, ...]:
        return tuple(f"family{p}.{f}" for p, f, _ in self._structure)

    @cached_property
    def _draws(self) -> dict[str, np.ndarray]:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        n_models, n_items, k = len(self._structure), cfg.n_items, cfg.n_options
        n_wrong = k - 1
        provider = np.array([p for p, _, _ in self._structure])
        family = np.array([p * cfg.families_per_provider + f for p, f, _ in self._structure])
        ability = rng.uniform(*cfg.ability_range, n_models)
        own_pull = rng.uniform(*cfg.own_pull_range, n_models)
        difficulty = rng.normal(0.0, 1.0, n_items)
        gold = rng.integers(0, k, n_items)
        correct = rng.random((n_models, n_items)) < 1.0 / (
            1.0 + np.exp(-(ability[:, None] - difficulty[None, :]))
        )
        # Traps as wrong-option ranks 0..n_wrong-1, mapped to options past the gold at the end.
        family_trap = rng.integers(0, n_wrong, (int(family.max()) + 1, n_items))
        provider_trap = rng.integers(0, n_wrong, (cfg.n_providers, n_items))
        own_trap = rng.integers(0, n_wrong, (n_models, n_items))
        uniform = rng.integers(0, n_wrong, (n_models, n_items))
        u = rng.random((3, n_models, n_items))
        wrong_rank = np.where(
            u[0] < own_pull[:, None],
            own_trap,
            np.where(
                u[1] < cfg.family_pull,
                family_trap[family],
                np.where(u[2] < cfg.provider_pull, provider_trap[provider], uniform),
            ),
        )
        wrong_option = (gold[None, :] + 1 + wrong_rank) % k
        choice = np.where(correct, gold[None, :], wrong_option)
        return {"choice": choice, "gold": gold, "ability": ability, "own_pull": own_pull}

    @property
    def choices(self) -> np.ndarray:
        """(n_models, n_items) chosen option."""
        return self._draws["choice"]

    @property
    def gold(self) -> np.ndarray:
        return self._draws["gold"]

    def true_effects(self) -> dict[str, float]:
        """Population coefficients of the pair regression (agreement units).

        With s = E[(1 - r_a)(1 - r_b)] = (1 - E r)^2 and c_t the trap-mixture agreement of pair
        type t, E[agreement] = 1/w + s (c_t - 1/w) (w = wrong options): own traps are uniform
        and independent of everything else, so they agree with anything at rate 1/w.
        """
        cfg = self.config
        w = cfg.n_options - 1
        mean_r = sum(cfg.own_pull_range) / 2.0
        s = (1.0 - mean_r) ** 2

        def expected(shared_family: bool, shared_provider: bool) -> float:
            c = _mixture_agreement(
                w, shared_family, shared_provider, cfg.family_pull, cfg.provider_pull
            )
            return 1.0 / w + s * (c - 1.0 / w)

        other = expected(False, False)
        same_provider = expected(False, True)
        same_family = expected(True, True)
        return {
            "intercept": other,
            "same_provider": same_provider - other,
            "same_family": same_family - same_provider,
            "acc_mean": 0.0,
            "acc_product": 0.0,
        }

    def response_matrix(self) -> ResponseMatrix:
        """The choices as a discrete-only `ResponseMatrix` (what the bundle would give, fast)."""
        cfg = self.config
        n_models, n_items, k = len(self.model_names), cfg.n_items, cfg.n_options
        offsets = np.arange(n_items + 1, dtype=np.int64) * k
        probs = np.zeros((n_models, n_items * k))
        rows = np.repeat(np.arange(n_models), n_items)
        probs[rows, (offsets[:-1][None, :] + self.choices).reshape(-1)] = 1.0
        return ResponseMatrix(
            models=self.model_names,
            items=tuple(f"e{x:05d}" for x in range(n_items)),
            offsets=offsets,
            gold=self.gold.astype(np.int64),
            probs=probs,
            choice=self.choices.astype(np.int64),
            present=np.ones((n_models, n_items), dtype=bool),
            probabilistic=np.zeros(n_models, dtype=bool),
        )

    def bundle(self) -> Bundle:
        """The world as a choice-only bundle (items with gold, models with provider and family)."""
        cfg = self.config
        letters = _LETTERS[: cfg.n_options]
        items = [
            Item(id=f"e{x:05d}", question=f"Item {x}", options=list(letters), gold=int(g))
            for x, g in enumerate(self.gold)
        ]
        models = [
            ModelInfo(name=name, provider=p, family=f)
            for name, p, f in zip(self.model_names, self.provider, self.family, strict=True)
        ]
        outputs = [
            Output(model=name, item=items[x].id, choice=int(self.choices[m, x]))
            for m, name in enumerate(self.model_names)
            for x in range(cfg.n_items)
        ]
        return Bundle(items=items, models=models, outputs=outputs)
