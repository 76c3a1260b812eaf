"""Every scikit-learn classifier and regressor that fits with its defaults, served.

The named-family tests in test_predictor.py pin the kernels; these sweep the whole
library, so a new estimator (or a new scikit-learn) that serving would answer wrong,
or refuse wrongly, fails here by name.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.utils import all_estimators

from driftward_serving.predictor import build_predictor, compute_prediction

ROWS = 7


def _fitted(kind: str, X: np.ndarray, y: np.ndarray) -> Iterator[tuple[str, Any]]:
    """Each estimator of `kind` that fits (X, y) with its default parameters."""
    for name, cls in all_estimators(type_filter=kind):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence and deprecation chatter
                model = cls().fit(X, y)
        except Exception:  # needs parameters, or cannot take this target: not served
            continue
        yield name, model


def _answers_like_predict(model: Any, X: np.ndarray) -> str | None:
    """None if serving answers the rows like model.predict, whole and one at a time;
    otherwise what differs."""
    predictor = build_predictor(model)
    whole = compute_prediction(predictor, X[:ROWS]).outputs
    rows = np.concatenate(
        [compute_prediction(predictor, X[i : i + 1]).outputs for i in range(ROWS)]
    )
    want = np.asarray(model.predict(X[:ROWS]))
    for got in (whole, rows):
        same = got.shape == want.shape and (
            np.allclose(got, want) if want.dtype.kind in "fc" else bool((got == want).all())
        )
        if not same:
            return f"{predictor.kernel_name}: {got.tolist()} instead of {want.tolist()}"
    return None


def test_every_default_classifier_and_regressor_answers_like_its_own_predict() -> None:
    checked, wrong = 0, {}
    for kind, (X, y) in [
        ("classifier", load_iris(return_X_y=True)),
        ("classifier", load_breast_cancer(return_X_y=True)),
        ("regressor", load_diabetes(return_X_y=True)),
    ]:
        for name, model in _fitted(kind, X, y):
            checked += 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                problem = _answers_like_predict(model, X)
            if problem is not None:
                wrong[name] = problem
    assert wrong == {}
    assert checked >= 100  # scikit-learn 1.9 fits 111 of them here


def test_every_model_fitted_on_two_targets_is_refused_and_on_one_column_served() -> None:
    X, y = load_iris(return_X_y=True)
    X = X[:, 1:]
    two_targets = np.c_[y, X[:, 0] > 3.0].astype(int)
    refused: dict[str, str] = {}
    loaded: list[str] = []
    for kind, target in [("classifier", two_targets), ("regressor", X[:, :2])]:
        for name, model in _fitted(kind, X, target):
            try:
                build_predictor(model)
            except ValueError as exc:
                refused[name] = str(exc)
            else:
                loaded.append(name)
    assert loaded == []
    unclear = {name: text for name, text in refused.items() if "outputs per row" not in text}
    assert unclear == {}
    assert len(refused) >= 30  # scikit-learn 1.9: 35
    served = 0
    for name, model in _fitted("regressor", X, X[:, :1]):  # fit(X, df[["y"]])
        shape = compute_prediction(build_predictor(model), X[:2]).outputs.shape
        assert shape in {(2,), (2, 1)}, (name, shape)  # the hand-off flattens (2, 1)
        served += 1
    assert served >= 40  # scikit-learn 1.9: 48
