"""`auditor.stats.multitest`: Holm and Benjamini-Hochberg against statsmodels' multipletests
(the reference), its docstring example, and errors naming the value."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from auditor.stats import multitest
from auditor.stats.multitest import adjust_p_values


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
