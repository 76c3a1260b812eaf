"""The prediction core: turn a validated float matrix into outputs and probabilities.

``build_predictor`` inspects a fitted scikit-learn model once and picks the
cheapest kernel that gives the same answers as the model itself:

* a NumPy kernel for logistic/linear models (optionally behind StandardScaler
  steps), which skips scikit-learn's per-call input validation (~70 % of a
  batch-1 call). It is used only after it reproduced the model's own
  ``predict``/``predict_proba`` on a probe matrix at load time;
* otherwise the model's own methods under ``assume_finite``, calling
  ``predict_proba`` once and deriving the class by argmax for estimators whose
  ``predict`` is defined that way (and calling ``predict`` too for the rest,
  e.g. SVC or threshold-tuned classifiers).

Input validation has already happened (see protocol.py), which is why skipping
scikit-learn's checks is safe. This module must not do I/O, parse requests, or
know about HTTP.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import sklearn
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.utils.extmath import softmax
from sklearn.utils.validation import check_is_fitted

FloatMatrix = npt.NDArray[np.float64]
Array = npt.NDArray[Any]

# Final estimators whose predict() is classes_[argmax(predict_proba())] by definition,
# so one predict_proba call answers both. Anything else gets both calls.
ARGMAX_CLASSIFIERS = frozenset(
    {
        "LogisticRegression",
        "LogisticRegressionCV",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "GradientBoostingClassifier",
        "HistGradientBoostingClassifier",
        "KNeighborsClassifier",
        "GaussianNB",
        "MultinomialNB",
        "BernoulliNB",
        "ComplementNB",
        "MLPClassifier",
        "LinearDiscriminantAnalysis",
        "QuadraticDiscriminantAnalysis",
    }
)
_LOGISTIC = frozenset({"LogisticRegression", "LogisticRegressionCV"})
_LINEAR_REGRESSORS = frozenset({"LinearRegression", "Ridge", "Lasso", "ElasticNet"})
_PROBE_ROWS = 64
# The rows tried, in turn, to learn how many outputs a model predicts per row.
_PROBE_VALUES = (0.0, 1.0, 0.5, -1.0)


@dataclass(frozen=True)
class Prediction:
    """Model outputs for a batch: one output per row, and class probabilities if any."""

    outputs: Array
    proba: FloatMatrix | None


Kernel = Callable[[FloatMatrix], Prediction]


@dataclass(frozen=True)
class Predictor:
    """A fitted model with the facts serving needs and the kernel chosen for it."""

    model: object
    n_features: int | None
    feature_names: tuple[str, ...] | None
    classes: Array | None
    kernel: Kernel
    kernel_name: str
    # False when no probe row told how many outputs the model predicts per row (it
    # declares no input width, or refused them all); each answer is checked instead.
    outputs_probed: bool = True

    @property
    def task(self) -> str:
        """Return "classification" when the model has classes, else "regression"."""
        return "classification" if self.classes is not None else "regression"


class ModelInputError(ValueError):
    """The model itself rejected an input that passed serving's checks."""


class ModelOutputError(RuntimeError):
    """The model answered with more than one output per row, which serving cannot serve."""


def compute_prediction(predictor: Predictor, matrix: FloatMatrix) -> Prediction:
    """Run the predictor's kernel on a validated matrix."""
    try:
        return predictor.kernel(matrix)
    except ValueError as exc:
        # A model can have constraints serving cannot know (e.g. non-negative counts
        # for MultinomialNB); that is the caller's input, not a server fault.
        raise ModelInputError(str(exc)) from exc


def build_predictor(model: object, feature_names: Sequence[str] | None = None) -> Predictor:
    """Inspect a fitted model and pick the fastest faithful kernel for it."""
    if not callable(getattr(model, "predict", None)):
        raise TypeError(f"the artifact holds a {type(model).__name__}, which has no predict()")
    _check_fitted(model)
    n_features = _int_or_none(getattr(model, "n_features_in_", None))
    names = _feature_names(model, feature_names, n_features)
    final = _final_estimator(model)
    outputs = _count_outputs(model, final, n_features)
    if outputs is not None and outputs != 1:
        # Its answers would be served wrong (argmax across outputs) and it has no single
        # target the monitor could score, so it is refused at load, not half served.
        raise ValueError(
            f"the model predicts {outputs} outputs per row (it was fitted on a target of "
            f"{outputs} columns); driftward serves and monitors models with one output "
            "per row: fit one model per target"
        )
    classes = _classes(model)
    generic_name, generic = _build_sklearn_kernel(model, final, classes)
    kernel_name, kernel = generic_name, generic
    fast = _build_numpy_kernel(model, classes)
    if fast is not None and n_features is not None and _agrees(fast, generic, n_features, model):
        kernel_name, kernel = f"numpy-{type(final).__name__}", fast
    if outputs is None:
        kernel = _checking_outputs(kernel)
    return Predictor(
        model=model,
        n_features=n_features,
        feature_names=names,
        classes=classes,
        kernel=kernel,
        kernel_name=kernel_name,
        outputs_probed=outputs is not None,
    )


def _count_outputs(model: Any, final: object, n_features: int | None) -> int | None:
    """How many values the model predicts per row: one array of classes per output for
    scikit-learn's multi-output classifiers, else the shape of one probe row's answer;
    None when neither tells. (``n_outputs_`` cannot tell: for MLPClassifier it counts
    output units, one per class.)"""
    classes = getattr(final, "classes_", None)
    if isinstance(classes, list):
        return len(classes)
    if n_features is None:
        return None
    # Models refuse some rows: log or Box-Cox steps refuse zeros, count models refuse
    # negatives. The first row the model answers tells its output shape.
    for value in _PROBE_VALUES:
        try:
            with sklearn.config_context(assume_finite=True), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                shape = np.shape(model.predict(np.full((1, n_features), value)))
        except Exception:  # advisory: a model may refuse a probe row in any way
            continue
        return int(math.prod(shape[1:]))
    return None


def _checking_outputs(kernel: Kernel) -> Kernel:
    """The kernel of a model no probe row could tell the outputs per row of: each answer
    is checked, and one with more than one output per row is a server fault, never
    served. (n, 1), a regressor fitted on a one-column target, is answered as it is."""

    def checked(matrix: FloatMatrix) -> Prediction:
        prediction = kernel(matrix)
        outputs = prediction.outputs
        if outputs.ndim != 1 and not (outputs.ndim == 2 and outputs.shape[1] == 1):
            raise ModelOutputError(
                f"the model answered {matrix.shape[0]} rows with outputs of shape "
                f"{list(outputs.shape)}; driftward serves models with one output per row"
            )
        return prediction

    return checked


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | np.integer) else None


def _feature_names(
    model: object, configured: Sequence[str] | None, n_features: int | None
) -> tuple[str, ...] | None:
    names: tuple[str, ...] | None = None
    if configured is not None:
        names = tuple(configured)
    else:
        fitted = getattr(model, "feature_names_in_", None)
        if fitted is not None:
            names = tuple(str(n) for n in fitted)
    if names is None:
        return None
    if len(set(names)) != len(names):
        raise ValueError(f"feature names must be unique, got {list(names)}")
    if n_features is not None and len(names) != n_features:
        raise ValueError(
            f"{len(names)} feature names were given but the model expects {n_features} features"
        )
    return names


def _classes(model: object) -> Array | None:
    classes = getattr(model, "classes_", None)
    if classes is None or not callable(getattr(model, "predict_proba", None)):
        return None
    return plain_values(np.asarray(classes))


def plain_values(values: Array) -> Array:
    """An object array (classes fitted from a pandas column) as the plain NumPy array
    of the same values, where there is one: every value keeps its type and equals
    what it was. Other arrays, and mixed classes such as ``[1, "a"]``, are returned as
    they are."""
    if not values.dtype.hasobject:
        return values
    listed = values.tolist()
    plain = np.array(listed)
    if plain.dtype.hasobject or plain.shape != values.shape:
        return values
    same = all(type(a) is type(b) and a == b for a, b in zip(plain.tolist(), listed, strict=True))
    return plain if same else values


def _check_fitted(model: object) -> None:
    """Raise NotFittedError (a ValueError naming the estimator) for a scikit-learn model,
    or any pipeline step of it, saved before it was fitted: otherwise every request would
    fail in the model, and read as the caller's bad input."""
    steps = getattr(model, "steps", None)
    if isinstance(steps, list):
        for _, step in steps:
            _check_fitted(step)
    if isinstance(model, BaseEstimator):
        check_is_fitted(model)


def _final_estimator(model: object) -> object:
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps:
        return _final_estimator(steps[-1][1])
    return model


def _build_sklearn_kernel(model: Any, final: object, classes: Array | None) -> tuple[str, Kernel]:
    # The model was fitted on a DataFrame if it has feature names; arrays then trigger a
    # warning per call, which is noise here because serving already ordered the columns.
    quiet = getattr(model, "feature_names_in_", None) is not None

    def call(method: Callable[[FloatMatrix], Array], matrix: FloatMatrix) -> Array:
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            if not quiet:
                return method(matrix)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                return method(matrix)

    if classes is None:

        def predict_only(matrix: FloatMatrix) -> Prediction:
            return Prediction(outputs=np.asarray(call(model.predict, matrix)), proba=None)

        return "sklearn-predict", predict_only

    if type(final).__name__ in ARGMAX_CLASSIFIERS:

        def proba_argmax(matrix: FloatMatrix) -> Prediction:
            proba = np.asarray(call(model.predict_proba, matrix), dtype=np.float64)
            return Prediction(outputs=classes[proba.argmax(axis=1)], proba=proba)

        return "sklearn-proba-argmax", proba_argmax

    # predict() returns classes_ values, as objects (KNeighbors) even where the classes
    # are plain; only those are cast, so other outputs are served exactly as predicted.
    plain_classes = None if classes.dtype.hasobject else classes.dtype

    def proba_and_predict(matrix: FloatMatrix) -> Prediction:
        proba = np.asarray(call(model.predict_proba, matrix), dtype=np.float64)
        outputs = np.asarray(call(model.predict, matrix))
        if plain_classes is not None and outputs.dtype.hasobject:
            outputs = outputs.astype(plain_classes)
        return Prediction(outputs=outputs, proba=proba)

    return "sklearn-proba-predict", proba_and_predict


def _build_numpy_kernel(model: Any, classes: Array | None) -> Kernel | None:
    """A kernel for linear models behind StandardScaler steps, or None if not applicable."""
    steps: list[Any] = [s for _, s in getattr(model, "steps", [(None, model)])]
    *prefix, final = steps
    scalers: list[tuple[FloatMatrix | None, FloatMatrix | None]] = []
    for step in prefix:
        if step is None or step == "passthrough":
            continue
        if type(step).__name__ != "StandardScaler":
            return None
        mean = step.mean_ if step.with_mean else None
        scale = step.scale_ if step.with_std else None
        scalers.append((mean, scale))
    coef = getattr(final, "coef_", None)
    intercept = getattr(final, "intercept_", None)
    if not isinstance(coef, np.ndarray) or intercept is None:
        return None
    name = type(final).__name__
    coef_t = coef.T
    if name in _LOGISTIC and classes is not None:
        binary = classes.shape[0] <= 2
        weights = np.ascontiguousarray(coef[0], dtype=np.float64)
        bias = float(np.ravel(intercept)[0])

        def logistic_row(row: FloatMatrix) -> Prediction:
            # One binary row: a dot product and scalar math instead of seven array
            # operations; the same formula (expit, [1 - p, p], first argmax).
            p = _expit(float(row.dot(weights)) + bias)
            index = 1 if p > 1.0 - p else 0
            return Prediction(outputs=classes[index : index + 1], proba=np.array([[1.0 - p, p]]))

        def logistic(matrix: FloatMatrix) -> Prediction:
            if binary and matrix.shape[0] == 1:
                return logistic_row(_apply_scalers(matrix, scalers)[0])
            scores = _apply_scalers(matrix, scalers) @ coef_t + intercept
            if binary:
                # sklearn computes expit(score) and stacks [1 - p, p]; same values, one
                # concatenate instead of a reshape and a stack (half the time at batch 1).
                positive = expit(scores)
                proba = np.concatenate([1 - positive, positive], axis=1)
            else:
                proba = softmax(scores, copy=False)
            return Prediction(outputs=classes[proba.argmax(axis=1)], proba=proba)

        return logistic
    if name in _LINEAR_REGRESSORS and classes is None:

        def linear(matrix: FloatMatrix) -> Prediction:
            outputs = _apply_scalers(matrix, scalers) @ coef_t + intercept
            return Prediction(outputs=np.asarray(outputs), proba=None)

        return linear
    return None


def _expit(score: float) -> float:
    """The logistic function of one score, in a form that cannot overflow."""
    if score >= 0:
        return 1.0 / (1.0 + math.exp(-score))
    exp = math.exp(score)
    return exp / (1.0 + exp)


def _apply_scalers(
    matrix: FloatMatrix, scalers: list[tuple[FloatMatrix | None, FloatMatrix | None]]
) -> FloatMatrix:
    for mean, scale in scalers:
        # Same operations, in the same order, as StandardScaler.transform.
        if mean is not None:
            matrix = matrix - mean
        if scale is not None:
            matrix = matrix / scale
    return matrix


def _agrees(fast: Kernel, reference: Kernel, n_features: int, model: Any) -> bool:
    """True if the fast kernel reproduces the model's own answers on a probe matrix,
    both on the whole matrix and one row at a time (kernels may shortcut one row)."""
    rng = np.random.default_rng(0)
    probe = rng.normal(size=(_PROBE_ROWS, n_features))
    probe = np.concatenate([probe, probe * 100.0, np.zeros((1, n_features))])
    try:
        whole, want = fast(probe), reference(probe)
        rows = [fast(probe[i : i + 1]) for i in range(probe.shape[0])]
        with sklearn.config_context(assume_finite=True), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predicted = np.asarray(model.predict(probe))
    except (ValueError, TypeError, FloatingPointError):
        return False
    if not _matches(whole, want, predicted):
        return False
    for i, row in enumerate(rows):
        want_row = Prediction(
            outputs=want.outputs[i : i + 1],
            proba=None if want.proba is None else want.proba[i : i + 1],
        )
        if not _matches(row, want_row, predicted[i : i + 1]):
            return False
    return True


def _matches(got: Prediction, want: Prediction, predicted: Array) -> bool:
    if got.outputs.shape != predicted.shape:
        return False
    if got.proba is None:
        close = np.allclose(got.outputs, predicted, rtol=1e-9, atol=1e-12)
        return want.proba is None and bool(close)
    return (
        want.proba is not None
        and got.proba.shape == want.proba.shape
        and np.array_equal(got.outputs, predicted)
        and bool(np.allclose(got.proba, want.proba, rtol=1e-9, atol=1e-12))
    )
