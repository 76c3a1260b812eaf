"""The reference profile: fixed bins and reference counts that live traffic is compared with.

A profile is built once from a reference dataset (or loaded from the JSON that
``driftward-serving profile build`` writes) and then never changes. It fixes
the bins that every window counts into, so that windows from different pods
can be added up. Numeric features get ~100 bins on reference quantiles plus a
bin below the reference minimum, one above its maximum and one for missing
values; categorical features get one bucket per reference category plus an
``__unseen__`` bucket that counts as evidence of drift.

Pure: builders take NumPy arrays and Python lists and return frozen
dataclasses; this module must not read files, fetch anything or import pyarrow.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

PROFILE_KIND = "driftward.dev/profile"
PROFILE_SCHEMA_VERSION = 1
DEFAULT_NUMERIC_BINS = 100
# Categorical cardinality is capped so that windows stay small and mergeable;
# the rarest reference categories share one "__other__" bucket.
MAX_CATEGORIES = 100
MAX_OTHER_MEMBERS = 10_000
# Equal-width bins of the top-class probability, for the calibration map of
# confidence-based performance estimation.
CONFIDENCE_BINS = 20

MISSING = "__missing__"
UNSEEN = "__unseen__"
OTHER = "__other__"


class FeatureType(StrEnum):
    """How a feature's values are binned and tested."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class Task(StrEnum):
    """Whether the model predicts classes or numbers."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


def canonical_key(value: object) -> str:
    """The string a categorical value or class label is compared by (1, 1.0 and "1" agree)."""
    if value is None:
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if not isinstance(value, float | np.floating):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return MISSING
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def to_float(value: object) -> float:
    """A numeric feature value as a float; missing or unparsable values become NaN."""
    if value is None or isinstance(value, bool | np.bool_):
        return math.nan if value is None else float(bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """Quantile bins of one numeric column and the reference counts in them.

    ``edges`` holds the reference minimum, the interior quantiles and the
    maximum (B + 1 values for B bins). ``counts`` has B + 3 entries: below the
    minimum, the B bins, above the maximum, then missing.
    """

    name: str
    edges: npt.NDArray[np.float64]
    counts: npt.NDArray[np.int64]
    mean: float
    std: float

    @property
    def n_bins(self) -> int:
        """How many counts a window keeps for this column."""
        return int(self.edges.size + 2)

    @property
    def missing_index(self) -> int:
        """The position of the missing-values count."""
        return int(self.edges.size + 1)

    def bin_values(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Each value's bin index; NaN goes to the missing bin."""
        x = np.asarray(values, dtype=np.float64)
        # Over all edges, "right" already puts values below the minimum in bin 0 and
        # values above the maximum in bin B + 1; the maximum itself closes bin B, and
        # NaN (which sorts last) goes to the missing bin.
        index = np.searchsorted(self.edges, x, side="right").astype(np.int64, copy=False)
        index[x == self.edges[-1]] = self.edges.size - 1
        index[np.isnan(x)] = self.missing_index
        return index

    def count_values(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """How many values fall in each bin: ``bincount(bin_values(values))``, ~5x faster.

        For a batch whose per-value bins are not needed: sorting is vectorised
        and cheap, while a binary search per unsorted value mispredicts its
        branches; on the sorted values one search per edge finds every bin.
        """
        x = np.sort(np.asarray(values, dtype=np.float64).ravel())  # NaNs sort last
        present = int(np.searchsorted(x, np.nan, side="left"))
        # Bin 0 is below the minimum, bin i is [edge i-1, edge i), the last
        # edge closes its bin, and one bin is above the maximum.
        cuts = np.concatenate(
            [
                np.searchsorted(x[:present], self.edges[:-1], side="left"),
                np.searchsorted(x[:present], self.edges[-1:], side="right"),
            ]
        )
        counts = np.diff(cuts, prepend=0, append=present)
        return np.concatenate([counts, [x.size - present]]).astype(np.int64)


class NumericBinner:
    """``bin_values`` for several numeric columns at once, without a branch per value.

    ``searchsorted`` mispredicts a branch at almost every step of each value's
    binary search. Here every column's edges sit in one table row, padded with
    NaN to a power of two, and all values take the same steps together: at
    step ``s`` a value moves right by ``s`` if the edge there is at most the
    value (NaN padding never is). The result, the count of edges at most each
    value, is ``searchsorted(side="right")``'s, with the same fix-ups for the
    maximum and NaN. It is about twice as fast on a 1,000-row batch of 30 columns.
    """

    def __init__(self, profiles: Sequence[NumericProfile]) -> None:
        sizes = np.array([p.edges.size for p in profiles], dtype=np.intp)
        width = 1 << int(max(sizes.max(initial=0), 1)).bit_length()  # > every edge count
        table = np.full((len(profiles), width), np.nan)
        for row, profile in enumerate(profiles):
            table[row, : profile.edges.size] = profile.edges
        self._table = table.ravel()
        self._starts = np.arange(len(profiles), dtype=np.intp) * width
        self._width = width
        self._last = sizes - 1
        self._maximum = np.array([p.edges[-1] for p in profiles], dtype=np.float64)
        self._missing = sizes + 1

    def bin_values(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        """Each value's bin in its column; ``values`` has one column per profile."""
        x = np.asarray(values, dtype=np.float64)
        position = np.zeros(x.shape, dtype=np.intp)
        step = self._width
        while step > 1:
            step //= 2
            position += (self._table[self._starts + position + (step - 1)] <= x) * step
        position = np.where(x == self._maximum, self._last, position)
        return np.where(np.isnan(x), self._missing, position)


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """Reference buckets of one categorical column.

    ``categories`` names the buckets in order (the last may be ``__other__``);
    ``counts`` has one more entry than ``categories``: the ``__unseen__``
    bucket, whose reference count is always 0.
    """

    name: str
    categories: tuple[str, ...]
    counts: npt.NDArray[np.int64]
    other_members: frozenset[str] = frozenset()
    _index: Mapping[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        index = {key: i for i, key in enumerate(self.categories)}
        if OTHER in index:
            for member in self.other_members:
                index.setdefault(member, index[OTHER])
        object.__setattr__(self, "_index", index)

    @property
    def n_bins(self) -> int:
        """How many counts a window keeps for this column."""
        return len(self.categories) + 1

    @property
    def unseen_index(self) -> int:
        """The position of the ``__unseen__`` bucket."""
        return len(self.categories)

    def bucket(self, key: str) -> int:
        """The bucket index of one canonical key."""
        return self._index.get(key, len(self.categories))

    def bucket_values(self, values: Iterable[object]) -> npt.NDArray[np.int64]:
        """Each raw value's bucket index; values the reference never had go to ``__unseen__``."""
        unseen = len(self.categories)
        get = self._index.get
        return np.fromiter((get(canonical_key(v), unseen) for v in values), dtype=np.int64)


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True, eq=False)
class Calibration:
    """Reference reliability: rows and correct predictions per top-probability bin."""

    counts: npt.NDArray[np.int64]
    correct: npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Profile:
    """Everything the monitor compares live traffic with, fixed for one model version."""

    features: tuple[FeatureProfile, ...]
    rows: int
    source_sha256: str = ""
    task: Task | None = None
    classes: tuple[str, ...] | None = None
    output: FeatureProfile | None = None
    output_source: str | None = None
    calibration: Calibration | None = None

    def feature(self, name: str) -> FeatureProfile:
        """The profile of the named feature; KeyError names what exists."""
        for profile in self.features:
            if profile.name == name:
                return profile
        known = ", ".join(p.name for p in self.features)
        raise KeyError(f"the reference profile has no feature {name!r}; it has: {known}")


def build_numeric_profile(
    name: str, values: npt.ArrayLike, n_bins: int = DEFAULT_NUMERIC_BINS
) -> NumericProfile:
    """Quantile bins and reference counts of one numeric column (NaN counts as missing)."""
    x = np.asarray(values, dtype=np.float64)
    present = np.sort(x[~np.isnan(x)])
    if present.size == 0:
        raise ValueError(f"numeric feature {name!r} has no non-missing reference values")
    # np.quantile's default (linear) rule, on one sort: np.quantile would
    # partition once per quantile, ~6x slower for 100 bins.
    position = np.linspace(0.0, 1.0, n_bins + 1) * (present.size - 1)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, present.size - 1)
    quantiles = present[lower] + (position - lower) * (present[upper] - present[lower])
    interior = np.unique(quantiles[1:-1])
    interior = interior[(interior > quantiles[0]) & (interior < quantiles[-1])]
    edges = np.concatenate([[quantiles[0]], interior, [quantiles[-1]]])
    provisional = NumericProfile(name, edges, np.zeros(edges.size + 2, np.int64), 0.0, 0.0)
    counts = provisional.count_values(x)
    return NumericProfile(
        name=name,
        edges=edges,
        counts=counts.astype(np.int64),
        mean=float(present.mean()),
        std=float(present.std(ddof=1)) if present.size > 1 else 0.0,
    )


def build_categorical_profile(
    name: str, values: Iterable[object], max_categories: int = MAX_CATEGORIES
) -> CategoricalProfile:
    """Reference buckets of one categorical column; the rarest share ``__other__`` past the cap."""
    tally = Counter(canonical_key(v) for v in values)
    if not tally:
        raise ValueError(f"categorical feature {name!r} has no reference values")
    return build_categorical_profile_from_tally(name, tally, max_categories)


def build_categorical_profile_from_tally(
    name: str, tally: Mapping[str, int], max_categories: int = MAX_CATEGORIES
) -> CategoricalProfile:
    """Reference buckets from a key -> count tally (keys already canonical)."""
    ranked = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    if len(ranked) <= max_categories:
        keep, rest = ranked, []
    else:
        keep, rest = ranked[: max_categories - 1], ranked[max_categories - 1 :]
    categories = [key for key, _ in keep]
    counts = [count for _, count in keep]
    members: frozenset[str] = frozenset()
    if rest:
        categories.append(OTHER)
        counts.append(sum(count for _, count in rest))
        members = frozenset(key for key, _ in rest[:MAX_OTHER_MEMBERS])
    return CategoricalProfile(
        name=name,
        categories=tuple(categories),
        counts=np.asarray([*counts, 0], dtype=np.int64),
        other_members=members,
    )


def build_class_profile(
    name: str, classes: Sequence[str], labels: Iterable[object]
) -> CategoricalProfile:
    """Buckets for model outputs: one per class, in the model's class order, plus unseen."""
    tally = Counter(canonical_key(v) for v in labels)
    counts = [tally.get(c, 0) for c in classes]
    return CategoricalProfile(
        name=name, categories=tuple(classes), counts=np.asarray([*counts, 0], dtype=np.int64)
    )


def compute_class_order(labels: Iterable[object]) -> tuple[str, ...]:
    """Class keys in scikit-learn's ``classes_`` order (np.unique: numeric or lexical sort)."""
    distinct = {canonical_key(v): v for v in labels if canonical_key(v) != MISSING}
    try:
        ordered = sorted(distinct, key=float)
    except ValueError:
        ordered = sorted(distinct)
    return tuple(ordered)


def build_calibration(
    proba: npt.ArrayLike, label_index: npt.ArrayLike, n_bins: int = CONFIDENCE_BINS
) -> Calibration:
    """Rows and correct top-class predictions per confidence bin, from reference probabilities."""
    p = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(label_index, dtype=np.int64)
    usable = (labels >= 0) & ~np.isnan(p).any(axis=1)
    p, labels = p[usable], labels[usable]
    confidence_bin = compute_confidence_bins(p.max(axis=1), n_bins)
    correct = (p.argmax(axis=1) == labels).astype(np.int64)
    return Calibration(
        counts=np.bincount(confidence_bin, minlength=n_bins).astype(np.int64),
        correct=np.bincount(confidence_bin, weights=correct, minlength=n_bins).astype(np.int64),
    )


def compute_confidence_bins(confidence: npt.ArrayLike, n_bins: int) -> npt.NDArray[np.int64]:
    """Equal-width bin index of each top-class probability in [0, 1]."""
    c = np.asarray(confidence, dtype=np.float64)
    return np.clip((c * n_bins).astype(np.int64), 0, n_bins - 1)


# --- JSON -----------------------------------------------------------------


def _feature_to_json(profile: FeatureProfile) -> dict[str, Any]:
    if isinstance(profile, NumericProfile):
        return {
            "name": profile.name,
            "type": FeatureType.NUMERIC.value,
            "edges": profile.edges.tolist(),
            "counts": profile.counts.tolist(),
            "mean": profile.mean,
            "std": profile.std,
        }
    return {
        "name": profile.name,
        "type": FeatureType.CATEGORICAL.value,
        "categories": list(profile.categories),
        "counts": profile.counts.tolist(),
        "otherMembers": sorted(profile.other_members),
    }


def profile_to_json(profile: Profile) -> dict[str, Any]:
    """The profile as the JSON document ``profile build`` writes."""
    return {
        "kind": PROFILE_KIND,
        "schemaVersion": PROFILE_SCHEMA_VERSION,
        "rows": profile.rows,
        "sourceSha256": profile.source_sha256,
        "task": profile.task.value if profile.task else None,
        "classes": list(profile.classes) if profile.classes is not None else None,
        "features": [_feature_to_json(f) for f in profile.features],
        "output": _feature_to_json(profile.output) if profile.output else None,
        "outputSource": profile.output_source,
        "calibration": (
            {
                "counts": profile.calibration.counts.tolist(),
                "correct": profile.calibration.correct.tolist(),
            }
            if profile.calibration
            else None
        ),
    }


class ProfileError(ValueError):
    """A profile document that cannot be used, with the field and what is wrong."""


def _require(doc: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in doc:
        raise ProfileError(f"{where}.{key} is missing")
    return doc[key]


def _feature_from_json(doc: Mapping[str, Any], where: str) -> FeatureProfile:
    name = str(_require(doc, "name", where))
    kind = _require(doc, "type", where)
    counts = np.asarray(_require(doc, "counts", where), dtype=np.int64)
    if kind == FeatureType.NUMERIC.value:
        edges = np.asarray(_require(doc, "edges", where), dtype=np.float64)
        if edges.size < 2 or np.any(np.diff(edges) < 0):
            raise ProfileError(f"{where}.edges must hold at least 2 ascending numbers")
        if counts.size != edges.size + 2:
            raise ProfileError(
                f"{where}.counts has {counts.size} entries; "
                f"{edges.size} edges need {edges.size + 2}"
            )
        return NumericProfile(
            name, edges, counts, float(doc.get("mean", 0.0)), float(doc.get("std", 0.0))
        )
    if kind == FeatureType.CATEGORICAL.value:
        categories = tuple(str(c) for c in _require(doc, "categories", where))
        if counts.size != len(categories) + 1:
            raise ProfileError(
                f"{where}.counts has {counts.size} entries; "
                f"{len(categories)} categories need {len(categories) + 1} (with __unseen__)"
            )
        members = frozenset(str(m) for m in doc.get("otherMembers", []))
        return CategoricalProfile(name, categories, counts, members)
    raise ProfileError(f"{where}.type is {kind!r}; use 'numeric' or 'categorical'")


def profile_from_json(doc: Mapping[str, Any]) -> Profile:
    """Parse and check a profile document; ProfileError names the bad field."""
    if doc.get("kind") != PROFILE_KIND:
        raise ProfileError(f"kind is {doc.get('kind')!r}; a profile has kind {PROFILE_KIND!r}")
    version = doc.get("schemaVersion")
    if version != PROFILE_SCHEMA_VERSION:
        raise ProfileError(
            f"schemaVersion is {version!r}; this monitor reads version {PROFILE_SCHEMA_VERSION}"
        )
    features = tuple(
        _feature_from_json(f, f"features[{i}]")
        for i, f in enumerate(_require(doc, "features", "profile"))
    )
    task_value = doc.get("task")
    try:
        task = Task(task_value) if task_value else None
    except ValueError:
        raise ProfileError(
            f"task is {task_value!r}; use 'classification' or 'regression'"
        ) from None
    classes = doc.get("classes")
    output_doc = doc.get("output")
    calibration_doc = doc.get("calibration")
    calibration = None
    if calibration_doc:
        calibration = Calibration(
            counts=np.asarray(calibration_doc["counts"], dtype=np.int64),
            correct=np.asarray(calibration_doc["correct"], dtype=np.int64),
        )
    return Profile(
        features=features,
        rows=int(doc.get("rows", 0)),
        source_sha256=str(doc.get("sourceSha256", "")),
        task=task,
        classes=tuple(str(c) for c in classes) if classes is not None else None,
        output=_feature_from_json(output_doc, "output") if output_doc else None,
        output_source=doc.get("outputSource"),
        calibration=calibration,
    )


def compute_profile_digest(profile: Profile) -> str:
    """A sha256 over the profile's canonical JSON: windows merge only under the same digest."""
    text = json.dumps(profile_to_json(profile), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --- building a whole profile ------------------------------------------------

OUTPUT_NAME = "__prediction__"


@dataclass(frozen=True)
class FeatureSpec:
    """A feature's name and how it is binned."""

    name: str
    type: FeatureType


Column = Sequence[object] | npt.NDArray[Any]


def _numeric_column(values: Column) -> npt.NDArray[np.float64]:
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return values.astype(np.float64)
    return np.fromiter((to_float(v) for v in values), dtype=np.float64)


def _is_regression_target(values: Column) -> bool:
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        finite = values[~np.isnan(values)]
        return bool(finite.size) and not bool(np.all(finite == np.round(finite)))
    return any(isinstance(v, float) and not float(v).is_integer() for v in values)


def build_profile(
    columns: Mapping[str, Column],
    features: Sequence[FeatureSpec],
    *,
    target: str | None = None,
    prediction: str | None = None,
    proba_columns: Sequence[str] = (),
    classes: Sequence[str] | None = None,
    task: Task | None = None,
    n_bins: int = DEFAULT_NUMERIC_BINS,
    source_sha256: str = "",
) -> Profile:
    """A reference profile from dataset columns; ValueError names a missing or unusable column."""
    wanted = [spec.name for spec in features]
    wanted += [c for c in (target, prediction) if c] + list(proba_columns)
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise ValueError(
            f"the reference dataset has no column {missing[0]!r}; it has: {', '.join(columns)}"
        )
    rows = len(columns[wanted[0]]) if wanted else 0
    built: list[FeatureProfile] = []
    for spec in features:
        if spec.type is FeatureType.NUMERIC:
            built.append(
                build_numeric_profile(spec.name, _numeric_column(columns[spec.name]), n_bins)
            )
        else:
            built.append(build_categorical_profile(spec.name, columns[spec.name]))
    output_column = prediction or target
    if task is None and output_column:
        task = (
            Task.REGRESSION
            if _is_regression_target(columns[output_column])
            else Task.CLASSIFICATION
        )
    output: FeatureProfile | None = None
    class_keys: tuple[str, ...] | None = None
    calibration: Calibration | None = None
    if task is Task.CLASSIFICATION:
        if classes:
            class_keys = tuple(canonical_key(c) for c in classes)
        elif output_column:
            seen = [v for c in (target, prediction) if c for v in columns[c]]
            class_keys = compute_class_order(seen)
        if class_keys and output_column:
            output = build_class_profile(OUTPUT_NAME, class_keys, columns[output_column])
        if class_keys and target and proba_columns:
            if len(proba_columns) != len(class_keys):
                raise ValueError(
                    f"{len(proba_columns)} probability columns were given for "
                    f"{len(class_keys)} classes ({', '.join(class_keys)}); give one per class"
                )
            proba = np.column_stack([_numeric_column(columns[c]) for c in proba_columns])
            position = {key: i for i, key in enumerate(class_keys)}
            label_index = [position.get(canonical_key(v), -1) for v in columns[target]]
            calibration = build_calibration(proba, label_index)
    elif task is Task.REGRESSION and output_column:
        output = build_numeric_profile(OUTPUT_NAME, _numeric_column(columns[output_column]), n_bins)
    return Profile(
        features=tuple(built),
        rows=rows,
        source_sha256=source_sha256,
        task=task,
        classes=class_keys,
        output=output,
        output_source=("prediction" if prediction else "target") if output else None,
        calibration=calibration,
    )
