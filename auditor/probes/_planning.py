"""Planning the battery's pairwise calls (pure): which pairs each judge compares, and how.

Per judge, each item contributes one base pair of candidates other than the judge, chosen by
rotating through all pairs (so every pair recurs evenly), and the first candidate's answer
is the one padded, cued or set against an injection. Every choice is a function of the seed,
the judge, the item and the candidates, so a plan is the same whenever it is made again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from itertools import combinations
from typing import Any

from auditor.schemas.bundle import Bundle, Item
from auditor.schemas.candidates import PlannedComparison

__all__ = ["BasePair", "base_pairs", "both_orders", "original", "placebo", "stable_index"]


def stable_index(count: int, *parts: object) -> int:
    """A deterministic index in [0, count) from ``parts`` (not Python's salted hash)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def _names(models: Sequence[Any]) -> list[str]:
    return [getattr(m, "display_name", None) or getattr(m, "name", m) for m in models]


class BasePair:
    """A judge, an item and two candidates with their answers."""

    __slots__ = ("a", "b", "index", "item", "judge", "text_a", "text_b")

    def __init__(
        self, judge: str, item: Item, index: int, a: str, b: str, text_a: str, text_b: str
    ) -> None:
        self.judge, self.item, self.index = judge, item, index
        self.a, self.b, self.text_a, self.text_b = a, b, text_a, text_b


def base_pairs(
    spec: Any, base: Bundle, answers: Mapping[tuple[str, str], str] | None
) -> Iterator[BasePair]:
    """One pair per judge and item (the first ``battery.max_pairs`` items when set).
    ``answers`` None plans as if every candidate answered (for the dry run and the design
    check, before answers are collected)."""
    judges = _names(spec.judges)
    candidates = _names(spec.candidate_models)
    for judge in judges:
        others = [c for c in candidates if c != judge]
        pairs = list(combinations(others, 2))
        if not pairs:
            continue
        limit = spec.battery.max_pairs
        for index, item in enumerate(base.items if limit is None else base.items[:limit]):
            start = stable_index(len(pairs), spec.battery.seed, judge)
            for step in range(len(pairs)):  # the next pair whose both answers exist
                a, b = pairs[(start + index + step) % len(pairs)]
                if answers is None:
                    yield BasePair(judge, item, index, a, b, f"<{a}>", f"<{b}>")
                    break
                text_a, text_b = answers.get((a, item.id)), answers.get((b, item.id))
                if text_a is not None and text_b is not None:
                    yield BasePair(judge, item, index, a, b, text_a, text_b)
                    break


def both_orders(
    probe: str, pair: BasePair, a: str, b: str, text_a: str, text_b: str
) -> list[PlannedComparison]:
    return [
        PlannedComparison(probe, pair.judge, pair.item.id, a, b, text_a, text_b),
        PlannedComparison(probe, pair.judge, pair.item.id, b, a, text_b, text_a),
    ]


def original(probe: str, pair: BasePair) -> PlannedComparison:
    return PlannedComparison(
        probe, pair.judge, pair.item.id, pair.a, pair.b, pair.text_a, pair.text_b
    )


def placebo(probe: str, pair: BasePair, seed: int) -> PlannedComparison:
    """The original comparison again, the first candidate relabelled as its placebo variant and
    a nonce appended to the prompt: the same question asked twice."""
    nonce = hashlib.sha256(
        "\x1f".join(map(str, (seed, pair.judge, pair.item.id, pair.a, pair.b))).encode()
    ).hexdigest()[:12]
    return PlannedComparison(
        probe,
        pair.judge,
        pair.item.id,
        f"{pair.a}::placebo:1",
        pair.b,
        pair.text_a,
        pair.text_b,
        nonce=nonce,
    )
