"""Result of the position probe: does a judge prefer the first (or second) slot of a pair?"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from auditor.schemas.probe import ProbeFinding, ProbeResult

__all__ = ["POSITION_SCHEMA_VERSION", "PositionFinding", "PositionResult"]

POSITION_SCHEMA_VERSION: Final = "1.0"


class PositionFinding(ProbeFinding):
    """One judge's position bias over the pairs it judged in both orders.

    ``estimate`` is the first-slot win rate among decisive verdicts (ties and unparseable
    excluded), ``ci95`` its Wilson interval, ``p_value`` the exact binomial test against 0.5.
    """

    pairs: int = Field(ge=0, description="Pairs judged in both orders with both verdicts parsed.")
    consistency: float | None = Field(
        default=None, description="Share of those pairs with the same winner in both orders."
    )
    consistency_ci95: tuple[float, float] | None = Field(default=None, description="Wilson CI.")
    first_slot_win_rate: float | None = Field(
        default=None, description="Share of decisive verdicts won by the answer shown first."
    )
    ties: int = Field(default=0, ge=0, description="Verdicts that were a tie.")
    unparseable: int = Field(default=0, ge=0, description="Verdicts whose output was unparseable.")
    accuracy: float | None = Field(
        default=None,
        description="Share of verdicts over both orders that pick `gold` (pairs with gold only).",
    )
    accuracy_both_orders: float | None = Field(
        default=None, description="Share of pairs with gold judged right in both orders."
    )
    gold_pairs: int = Field(default=0, ge=0, description="Pairs behind the two accuracies.")


class PositionResult(ProbeResult):
    probe: Literal["position"] = "position"
    schema_version: str = POSITION_SCHEMA_VERSION
    findings: list[PositionFinding] = Field(default_factory=list)  # type: ignore[assignment]
