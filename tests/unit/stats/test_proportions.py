"""Proportion intervals against statsmodels and Newcombe's (1998) published table."""

from __future__ import annotations

import pytest
from statsmodels.stats.proportion import proportion_confint

from auditor.stats.proportions import (
    clopper_pearson_interval,
    newcombe_difference,
    wilson_interval,
)

CASES = [(0, 1), (0, 10), (1, 10), (8, 10), (10, 10), (37, 113), (499, 1000)]


@pytest.mark.parametrize(("k", "n"), CASES)
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_wilson_and_clopper_pearson_equal_statsmodels(k: int, n: int, alpha: float) -> None:
    assert wilson_interval(k, n, alpha) == pytest.approx(
        proportion_confint(k, n, alpha=alpha, method="wilson"), abs=1e-12
    )
    assert clopper_pearson_interval(k, n, alpha) == pytest.approx(
        proportion_confint(k, n, alpha=alpha, method="beta"), abs=1e-12
    )


def test_wilson_interval_contains_its_estimate_and_is_exact_at_the_ends() -> None:
    # At k = 0 the Wilson lower bound is exactly 0 (centre equals half-width), at k = n the upper
    # bound exactly 1; float rounding used to leave 1e-17 on the wrong side of the estimate,
    # which broke the report's error bars (matplotlib refuses a negative bar length).
    for n in range(1, 301):
        assert wilson_interval(0, n)[0] == 0.0
        assert wilson_interval(n, n)[1] == 1.0
        for k in range(n + 1):
            low, high = wilson_interval(k, n)
            assert low <= k / n <= high, (k, n, low, high)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10.
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
    ],
)
def test_newcombe_difference_equals_the_published_table(
    counts: tuple[int, int, int, int], expected: tuple[float, float]
) -> None:
    assert newcombe_difference(*counts) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: wilson_interval(3, 2), "successes must be between 0 and trials; got 3 of 2"),
        (lambda: wilson_interval(0, 0), "trials must be positive"),
        (lambda: clopper_pearson_interval(1, 5, alpha=1.5), "alpha must be between 0 and 1"),
        (lambda: newcombe_difference(1, 2, -1, 2), "successes_2 must be between"),
    ],
)
def test_bad_counts_name_the_value(call, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()
