"""The prediction core picks a kernel that answers exactly like the model itself."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, PowerTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from driftward_serving.predictor import (
    ModelInputError,
    ModelOutputError,
    build_predictor,
    compute_prediction,
)


def fitted_classifiers() -> list[tuple[str, Any, np.ndarray, np.ndarray]]:
    """Classifiers of each kernel family, with data to check them on."""
    iris_X, iris_y = load_iris(return_X_y=True)
    bc_X, bc_y = load_breast_cancer(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[iris_y]
    return [
        ("numpy-LogisticRegression", LogisticRegression(max_iter=5000), bc_X, bc_y),
        ("numpy-LogisticRegression", LogisticRegression(max_iter=1000), iris_X, names),
        (
            "numpy-LogisticRegression",
            make_pipeline(StandardScaler(), LogisticRegression()),
            bc_X,
            bc_y,
        ),
        ("sklearn-proba-argmax", make_pipeline(MinMaxScaler(), LogisticRegression()), bc_X, bc_y),
        (
            "sklearn-proba-argmax",
            RandomForestClassifier(n_estimators=5, random_state=0),
            iris_X,
            iris_y,
        ),
        ("sklearn-proba-argmax", DecisionTreeClassifier(random_state=0), iris_X, names),
    ]


@pytest.mark.parametrize(("kernel", "model", "X", "y"), fitted_classifiers())
def test_classifier_kernels_match_the_model(kernel: str, model: Any, X: Any, y: Any) -> None:
    model.fit(X, y)
    predictor = build_predictor(model)
    assert predictor.kernel_name == kernel
    prediction = compute_prediction(predictor, np.ascontiguousarray(X, dtype=np.float64))
    assert prediction.proba is not None
    np.testing.assert_allclose(prediction.proba, model.predict_proba(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(prediction.outputs, model.predict(X))
    assert predictor.task == "classification"


@pytest.mark.parametrize("model", [LinearRegression(), make_pipeline(StandardScaler(), Ridge())])
def test_linear_regressors_use_numpy_and_match(model: Any) -> None:
    X, y = load_diabetes(return_X_y=True)
    model.fit(X, y)
    predictor = build_predictor(model)
    assert predictor.kernel_name.startswith("numpy-")
    prediction = compute_prediction(predictor, X)
    assert prediction.proba is None
    np.testing.assert_allclose(prediction.outputs, model.predict(X), rtol=1e-9)
    assert predictor.task == "regression"


def test_a_classifier_whose_predict_is_not_argmax_gets_both_calls() -> None:
    """A threshold-shifted classifier: argmax over probabilities would be wrong."""
    X, y = load_breast_cancer(return_X_y=True)
    inner = LogisticRegression(max_iter=5000).fit(X, y)

    class Shifted:
        """Predicts class 1 only above 0.9 probability."""

        classes_ = inner.classes_
        n_features_in_ = X.shape[1]

        def predict_proba(self, data: np.ndarray) -> np.ndarray:
            return inner.predict_proba(data)

        def predict(self, data: np.ndarray) -> np.ndarray:
            return (inner.predict_proba(data)[:, 1] > 0.9).astype(int)

    predictor = build_predictor(Shifted())
    assert predictor.kernel_name == "sklearn-proba-predict"
    prediction = compute_prediction(predictor, X)
    np.testing.assert_array_equal(prediction.outputs, Shifted().predict(X))


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(max_iter=1000),
        DecisionTreeClassifier(max_depth=2),
        KNeighborsClassifier(3),
    ],
    ids=["numpy", "argmax", "predict"],
)
def test_classes_fitted_from_python_strings_answer_as_plain_text(model: Any) -> None:
    """A pandas label column fits classes_ as an object array; serving answers with
    the same strings, from a plain text array that the record hand-off can carry."""
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    predictor = build_predictor(model.fit(X, names))
    prediction = compute_prediction(predictor, X[::10])
    assert predictor.classes is not None
    assert predictor.classes.dtype == np.dtype("<U10")
    assert prediction.outputs.dtype == np.dtype("<U10")
    assert prediction.outputs.tolist() == model.predict(X[::10]).tolist()


def test_mixed_classes_keep_their_types() -> None:
    """Classes of several types have no plain array: 1 must not become "1"."""

    class Mixed:
        classes_ = np.array([1, "one"], dtype=object)
        n_features_in_ = 2

        def predict_proba(self, data: np.ndarray) -> np.ndarray:
            return np.tile([0.25, 0.75], (len(data), 1))

        def predict(self, data: np.ndarray) -> np.ndarray:
            return np.array(["one"] * len(data), dtype=object)

    predictor = build_predictor(Mixed())
    assert predictor.classes is not None
    assert predictor.classes.tolist() == [1, "one"]
    assert [type(c) for c in predictor.classes.tolist()] == [int, str]
    assert compute_prediction(predictor, np.zeros((1, 2))).outputs.tolist() == ["one"]


def test_feature_names_come_from_settings_or_the_model() -> None:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    assert build_predictor(model).feature_names is None
    assert build_predictor(model, ["a", "b", "c", "d"]).feature_names == ("a", "b", "c", "d")
    with pytest.raises(ValueError, match="2 feature names were given but the model expects 4"):
        build_predictor(model, ["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        build_predictor(model, ["a", "a", "c", "d"])


def test_models_fitted_on_named_columns_keep_their_names_and_stay_quiet() -> None:
    X, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    model.feature_names_in_ = np.array(["a", "b", "c", "d"], dtype=object)
    predictor = build_predictor(model)
    assert predictor.feature_names == ("a", "b", "c", "d")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compute_prediction(predictor, X[:2])


def test_not_a_model_is_refused() -> None:
    with pytest.raises(TypeError, match="no predict"):
        build_predictor({"coef": [1, 2]})


def _two_targets(X: np.ndarray) -> np.ndarray:
    return np.c_[X[:, 0] > X[:, 0].mean(), X[:, 1] > X[:, 1].mean()].astype(int)


@pytest.mark.parametrize(
    "model",
    [
        DecisionTreeClassifier(random_state=0),  # classes_ is a list; once served argmax'd
        KNeighborsClassifier(3),
        MultiOutputRegressor(Ridge()),  # declares nothing: found by its probe row
        make_pipeline(StandardScaler(), LinearRegression()),  # numpy kernel's family
    ],
    ids=["tree", "knn", "multioutput-wrapper", "pipeline-linear"],
)
def test_a_model_with_two_outputs_per_row_is_refused_by_name(model: Any) -> None:
    # Two targets of two classes each: the case once answered wrong. Different class
    # counts, and models that must still load (multiclass MLPClassifier among them), are
    # swept in test_predictor_sweep.py.
    X, _ = load_iris(return_X_y=True)
    model.fit(X, _two_targets(X))
    with pytest.raises(ValueError, match=r"predicts 2 outputs per row .* fit one model per target"):
        build_predictor(model)


@pytest.mark.parametrize(
    "model",
    [
        LogisticRegression(),
        make_pipeline(StandardScaler(), LogisticRegression()),
        # Only the scaler is unfitted: check_is_fitted on the pipeline looks at the end.
        make_pipeline(StandardScaler(), LogisticRegression().fit(np.eye(2), [0, 1])),
    ],
    ids=["estimator", "pipeline", "pipeline-step"],
)
def test_an_unfitted_model_is_refused_by_name(model: Any) -> None:
    with pytest.raises(ValueError, match=r"This (LogisticRegression|Pipeline|StandardScaler) "):
        build_predictor(model)


def test_a_model_that_refuses_zeros_is_probed_with_other_rows() -> None:
    # Box-Cox refuses a row of zeros; a row of ones still tells the two outputs.
    X, _ = load_iris(return_X_y=True)
    model = make_pipeline(PowerTransformer(method="box-cox"), LinearRegression())
    model.fit(X, _two_targets(X))
    with pytest.raises(ValueError, match=r"predicts 2 outputs per row"):
        build_predictor(model)


class RefusesConstantRows:
    """Answers two outputs per row, and refuses any row of one repeated value."""

    n_features_in_ = 2

    def predict(self, data: np.ndarray) -> np.ndarray:
        if (data == data[:, :1]).all(axis=1).any():
            raise ValueError("a row of one repeated value")
        return np.c_[data.sum(axis=1), data.prod(axis=1)]


def test_a_model_that_refuses_every_probe_is_checked_on_each_answer() -> None:
    predictor = build_predictor(RefusesConstantRows())
    assert not predictor.outputs_probed
    with pytest.raises(ModelOutputError, match=r"outputs of shape \[1, 2\]; .* one output per row"):
        compute_prediction(predictor, np.array([[1.0, 2.0]]))


def test_a_one_column_target_is_answered_as_the_model_shapes_it() -> None:
    X, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(X, y.reshape(-1, 1))
    predictor = build_predictor(model)
    assert predictor.outputs_probed
    outputs = compute_prediction(predictor, X[:3]).outputs
    assert outputs.shape == (3, 1)
    np.testing.assert_allclose(outputs, model.predict(X[:3]))


def test_model_side_input_errors_are_input_errors() -> None:
    class Picky:
        """Rejects negative inputs at predict time, as some estimators do."""

        n_features_in_ = 2

        def predict(self, data: np.ndarray) -> np.ndarray:
            if (data < 0).any():
                raise ValueError("Negative values in data")
            return data.sum(axis=1)

    predictor = build_predictor(Picky())
    assert compute_prediction(predictor, np.ones((1, 2))).outputs.tolist() == [2.0]
    with pytest.raises(ModelInputError, match="Negative"):
        compute_prediction(predictor, -np.ones((1, 2)))


@pytest.mark.parametrize(("kernel", "model", "X", "y"), fitted_classifiers()[:3])
def test_one_row_at_a_time_answers_like_the_model(kernel: str, model: Any, X: Any, y: Any) -> None:
    # Batch-1 requests take the kernels' one-row shortcut; it must agree row by row.
    model.fit(X, y)
    predictor = build_predictor(model)
    assert predictor.kernel_name == kernel
    matrix = np.ascontiguousarray(X, dtype=np.float64)
    for i in range(0, matrix.shape[0], 7):
        prediction = compute_prediction(predictor, matrix[i : i + 1])
        assert prediction.proba is not None
        assert prediction.proba.shape == (1, len(model.classes_))
        np.testing.assert_allclose(
            prediction.proba, model.predict_proba(X[i : i + 1]), rtol=1e-9, atol=1e-12
        )
        np.testing.assert_array_equal(prediction.outputs, model.predict(X[i : i + 1]))
