"""`auditor.stats.regression`: OLS against statsmodels OLS (the reference) and the textbook
closed form, and errors naming the column."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from statsmodels.regression.linear_model import OLS

from auditor.stats import regression
from auditor.stats.regression import ols
from tests.support.stats import correlated_data


def test_docstring_example() -> None:
    assert doctest.testmod(regression).failed == 0


@pytest.mark.parametrize("intercept", ["intercept", None])
def test_equals_statsmodels(intercept: str | None) -> None:
    data = correlated_data(7, 30)
    fit = ols(data.score, {"capa": data.capa, "accuracy": data.accuracy}, intercept=intercept)
    columns = [data.capa.to_numpy(), data.accuracy.to_numpy()]
    design = np.column_stack(([np.ones(30)] if intercept else []) + columns)
    reference = OLS(data.score.to_numpy(), design).fit()
    assert fit.terms == (("intercept",) if intercept else ()) + ("capa", "accuracy")
    np.testing.assert_allclose(fit.coefficients, reference.params, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.std_errors, reference.bse, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.p_values, reference.pvalues, rtol=1e-9, atol=1e-15)
    assert fit.r_squared == pytest.approx(reference.rsquared, abs=1e-12)
    assert fit.as_dicts()["coefficients"]["capa"] == fit.coefficients[fit.terms.index("capa")]


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="score: needs at least 4 observations for 3"):
        ols([1, 2, 3], {"capa": [1, 2, 4], "accuracy": [3, 1, 2]}, response="score")
    with pytest.raises(ValueError, match=r"capa: has 3 values but score has 4"):
        ols([1, 2, 3, 4], {"capa": [1, 2, 4]}, response="score")
    with pytest.raises(ValueError, match=r"x\[2\]: must be finite; got inf"):
        ols([1, 2, 3, 4], {"x": [1, 2, float("inf"), 4]})
    with pytest.raises(ValueError, match=r"intercept, x, twice: the regressors are collinear"):
        ols([1, 2, 3, 5], {"x": [1, 2, 3, 4], "twice": [2, 4, 6, 8]})
