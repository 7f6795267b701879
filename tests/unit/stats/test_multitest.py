"""`auditor.stats.multitest`: Holm and Benjamini-Hochberg against statsmodels' multipletests
(the reference), its docstring example, and errors naming the value."""

from __future__ import annotations

import doctest
import gc

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from auditor.stats import multitest
from auditor.stats.multitest import adjust_p_values


@pytest.fixture
def reference_without_gc(monkeypatch: pytest.MonkeyPatch) -> None:
    """statsmodels' Holm ends with `gc.collect()` (its own memory housekeeping, no part of the
    numbers): a full collection of the test run's heap, up to ~1 s a call. Not during these
    tests (the code under test never calls it)."""
    monkeypatch.setattr(gc, "collect", lambda generation=2: 0)


@pytest.mark.usefixtures("reference_without_gc")
def test_equals_statsmodels() -> None:
    rng = np.random.default_rng(4)
    for m in (1, 2, 7, 50):
        p = rng.uniform(size=m) ** 2
        ours = adjust_p_values(p)
        for method in ("holm", "fdr_bh"):
            np.testing.assert_allclose(ours[method], multipletests(p, method=method)[1], rtol=0)


def test_docstring_example() -> None:
    assert doctest.testmod(multitest).failed == 0


def test_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match=r"p_values\[1\]: must be in \[0, 1\]; got 1.2"):
        adjust_p_values([0.1, 1.2])
    with pytest.raises(ValueError, match=r"p_values\[0\]: must be finite; got nan"):
        adjust_p_values([float("nan")])


def test_adjust_p_values_hand_worked() -> None:
    """Hand-worked, m = 4, p = (.01, .04, .03, .005); sorted .005 < .01 < .03 < .04.
    Holm: 4(.005)=.02, 3(.01)=.03, 2(.03)=.06, max(.06, 1(.04))=.06.
    BH: .04*4/4=.04, min(.04, .03*4/3=.04)=.04, .01*4/2=.02, min(.02, .005*4/1=.02)=.02."""
    adjusted = adjust_p_values([0.01, 0.04, 0.03, 0.005])
    assert adjusted["holm"] == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    assert adjusted["fdr_bh"] == pytest.approx([0.02, 0.04, 0.04, 0.02], abs=1e-15)
    capped = adjust_p_values([0.5, 0.6])  # Holm 2(.5) = 1, capped at 1
    assert capped["holm"].tolist() == [1.0, 1.0]
    assert capped["fdr_bh"].tolist() == [0.6, 0.6]


@pytest.mark.usefixtures("reference_without_gc")
def test_equals_statsmodels_with_ties() -> None:
    """Reference: statsmodels.stats.multitest.multipletests (holm, fdr_bh), ties included."""
    rng = np.random.default_rng(0)
    for m in (1, 2, 3, 9, 30):
        for _ in range(30):
            p = rng.random(m) ** 3
            p[: m // 3] = p[0]
            ours = adjust_p_values(p)
            assert np.array_equal(ours["fdr_bh"], multipletests(p, method="fdr_bh")[1])
            assert np.array_equal(ours["holm"], multipletests(p, method="holm")[1])
    assert adjust_p_values([])["holm"].size == 0
    with pytest.raises(ValueError, match=r"p_values\[1\]: must be in \[0, 1\]; got 1.2"):
        adjust_p_values([0.1, 1.2])
