"""The monitor configuration (the ConfigMap's ``monitor.json``) as validated msgspec structs.

It is the CRD's ``spec.monitoring`` with defaults filled in, plus the model
identity (docs/contracts.md). Field names are the CRD's camelCase, enum values
are the CRD's spelling and are matched case-insensitively (so the lowercase
forms in older examples, such as ``"holm"`` or ``"ks"``, still read). A bad
document raises ``ConfigError`` whose message names each bad field, the value
given and what is allowed. This module must not read files or environment
variables: the caller hands it a parsed document.

msgspec rather than pydantic: the sidecar must import in under 0.5 s, and
pydantic's import plus building these models was about a third of that.
msgspec stops at the first problem in a document, so ``parse_monitor_config``
checks each top-level section (and each feature) on its own, to report one
problem per section rather than one in all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from enum import Enum, StrEnum
from typing import Annotated, Any

import msgspec
import msgspec.inspect

from driftward_serving.monitor.profile import FeatureType, Task
from driftward_serving.monitor.stats import Correction


class ConfigError(ValueError):
    """A monitor configuration that cannot be used; the message says how to fix it."""


class DriftMethod(StrEnum):
    """How a feature's effect size is measured (the p-value comes from KS or chi-square)."""

    KOLMOGOROV_SMIRNOV = "KolmogorovSmirnov"
    WASSERSTEIN = "Wasserstein"
    PSI = "PSI"
    CHI_SQUARE = "ChiSquare"
    JENSEN_SHANNON = "JensenShannon"


NUMERIC_METHODS = (DriftMethod.KOLMOGOROV_SMIRNOV, DriftMethod.WASSERSTEIN, DriftMethod.PSI)
CATEGORICAL_METHODS = (DriftMethod.CHI_SQUARE, DriftMethod.PSI, DriftMethod.JENSEN_SHANNON)


class MetricName(StrEnum):
    """The performance metric a policy acts on."""

    ACCURACY = "Accuracy"
    F1_MACRO = "F1Macro"
    F1_WEIGHTED = "F1Weighted"
    PRECISION_MACRO = "PrecisionMacro"
    RECALL_MACRO = "RecallMacro"
    ROC_AUC = "ROCAUC"
    LOG_LOSS = "LogLoss"
    MAE = "MAE"
    RMSE = "RMSE"
    R2 = "R2"


REGRESSION_METRICS = (MetricName.MAE, MetricName.RMSE, MetricName.R2)
LOWER_IS_BETTER = (MetricName.LOG_LOSS, MetricName.MAE, MetricName.RMSE)


class ReferenceFormat(StrEnum):
    """What the reference file holds."""

    CSV = "CSV"
    PARQUET = "Parquet"
    PROFILE = "Profile"


_ALIASES: dict[str, str] = {
    "ks": "KolmogorovSmirnov",
    "kolmogorovsmirnov": "KolmogorovSmirnov",
    "chisquare": "ChiSquare",
    "chi2": "ChiSquare",
    "chisquared": "ChiSquare",
    "js": "JensenShannon",
    "jensenshannon": "JensenShannon",
    "bh": "BenjaminiHochberg",
    "fdr": "BenjaminiHochberg",
    "benjaminihochberg": "BenjaminiHochberg",
    "rocauc": "ROCAUC",
    "auc": "ROCAUC",
}


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@functools.cache
def _members(enum: type[Enum]) -> dict[str, Enum]:
    return {_squash(str(member.value)): member for member in enum}


def loose_member(enum: type[Enum], text: str) -> Enum | None:
    """The member of ``enum`` that ``text`` names, ignoring case, spaces and the old aliases."""
    members = _members(enum)
    squashed = _squash(text)
    return members.get(squashed) or members.get(_squash(_ALIASES.get(squashed, "")))


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Kubernetes-style duration such as ``30s``, ``2m`` or ``1h30m``."""
    if not text or _DURATION.sub("", text) != "":
        raise ValueError(f"{text!r} is not a duration; write it like 30s, 2m or 1h30m")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(text))


class _Section(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"
):
    pass


NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class ModelIdentity(_Section, frozen=True, kw_only=True):
    """Which model version this monitor watches."""

    name: str = ""
    version: str = ""
    task: Task = Task.CLASSIFICATION


class ReferenceConfig(_Section, frozen=True, kw_only=True):
    """Where the reference lives and how it is pinned."""

    uri: Annotated[str, msgspec.Meta(min_length=1)]
    sha256: Annotated[str, msgspec.Meta(pattern=r"^[a-f0-9]{64}$")]
    format: ReferenceFormat = ReferenceFormat.CSV
    # Extensions over the CRD (optional): the dataset columns holding the
    # label, the model's prediction and its class probabilities, used to
    # profile the model's outputs and calibrate performance estimates.
    target_column: str | None = None
    prediction_column: str | None = None
    proba_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.match(r"^(file|https?|s3)://.+", self.uri):
            raise ValueError(
                f"uri {self.uri!r} must start with file://, http://, https:// or s3://"
            )


class FeatureConfig(_Section, frozen=True, kw_only=True):
    """One input feature, in the model's order, with optional per-feature overrides."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    type: FeatureType
    method: DriftMethod | None = None
    threshold: NonNegative | None = None

    def __post_init__(self) -> None:
        allowed = NUMERIC_METHODS if self.type is FeatureType.NUMERIC else CATEGORICAL_METHODS
        if self.method is not None and self.method not in allowed:
            names = ", ".join(m.value for m in allowed)
            raise ValueError(
                f"method {self.method.value!r} does not suit a {self.type.value} feature; "
                f"use one of {names}"
            )


class WindowConfig(_Section, frozen=True, kw_only=True):
    """The sliding window of recent predictions."""

    size: Annotated[int, msgspec.Meta(ge=100, le=1_000_000)] = 5000
    min_samples: Annotated[int, msgspec.Meta(ge=30)] = 1000


class NumericDriftConfig(_Section, frozen=True, kw_only=True):
    """Default method and effect-size floor for numeric features."""

    method: DriftMethod = DriftMethod.KOLMOGOROV_SMIRNOV
    threshold: NonNegative = 0.05

    def __post_init__(self) -> None:
        if self.method not in NUMERIC_METHODS:
            names = ", ".join(m.value for m in NUMERIC_METHODS)
            raise ValueError(f"method {self.method.value!r} is not numeric; use one of {names}")
        if self.method is DriftMethod.KOLMOGOROV_SMIRNOV and self.threshold > 1:
            raise ValueError(f"threshold {self.threshold} is a KS distance and must be at most 1")


class CategoricalDriftConfig(_Section, frozen=True, kw_only=True):
    """Default method and effect-size floor for categorical features."""

    method: DriftMethod = DriftMethod.CHI_SQUARE
    threshold: NonNegative = 0.05

    def __post_init__(self) -> None:
        if self.method not in CATEGORICAL_METHODS:
            names = ", ".join(m.value for m in CATEGORICAL_METHODS)
            raise ValueError(f"method {self.method.value!r} is not categorical; use one of {names}")
        if self.method is DriftMethod.JENSEN_SHANNON and self.threshold > 1:
            raise ValueError(
                f"threshold {self.threshold} is a Jensen-Shannon distance and must be at most 1"
            )


class DriftConfig(_Section, frozen=True, kw_only=True):
    """How drift is judged across features."""

    alpha: Annotated[float, msgspec.Meta(gt=0, le=0.2)] = 0.01
    correction: Correction = Correction.HOLM
    numeric: NumericDriftConfig = NumericDriftConfig()
    categorical: CategoricalDriftConfig = CategoricalDriftConfig()
    prediction_drift: bool = True
    dataset_drift_share: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.3


class PerformanceConfig(_Section, frozen=True, kw_only=True):
    """The metric a policy acts on and the baseline it is compared with."""

    metric: MetricName
    baseline: float
    max_degradation: NonNegative = 0.05
    min_labels: Annotated[int, msgspec.Meta(ge=10)] = 200


class MonitorConfig(_Section, frozen=True, kw_only=True):
    """The whole ``monitor.json``."""

    model: ModelIdentity = ModelIdentity()
    reference: ReferenceConfig
    features: Annotated[tuple[FeatureConfig, ...], msgspec.Meta(min_length=1, max_length=500)]
    window: WindowConfig = WindowConfig()
    interval: str = "30s"
    drift: DriftConfig = DriftConfig()
    performance: PerformanceConfig | None = None

    def __post_init__(self) -> None:
        try:
            seconds = parse_duration(self.interval)
        except ValueError as error:
            raise ValueError(f"interval: {error}") from None
        if not 0 < seconds <= 86_400:
            raise ValueError(f"interval: {self.interval!r} must be more than 0 and at most 24h")
        seen: set[str] = set()
        for feature in self.features:
            if feature.name in seen:
                raise ValueError(
                    f"features: feature {feature.name!r} is listed twice; names must be unique"
                )
            seen.add(feature.name)
        if self.window.min_samples > self.window.size:
            raise ValueError(
                f"window.minSamples ({self.window.min_samples}) must not exceed "
                f"window.size ({self.window.size})"
            )
        perf = self.performance
        if perf is None:
            return
        if perf.min_labels > self.window.size:
            raise ValueError(
                f"performance.minLabels ({perf.min_labels}) must not exceed "
                f"window.size ({self.window.size})"
            )
        regression_metric = perf.metric in REGRESSION_METRICS
        if regression_metric != (self.model.task is Task.REGRESSION):
            raise ValueError(
                f"performance.metric {perf.metric.value!r} does not suit model.task "
                f"{self.model.task.value!r}: MAE, RMSE and R2 are for regression; "
                "Accuracy, F1Macro, F1Weighted, PrecisionMacro, RecallMacro, ROCAUC "
                "and LogLoss are for classification"
            )

    @property
    def interval_seconds(self) -> float:
        """The evaluation interval in seconds."""
        return parse_duration(self.interval)

    def to_json(self) -> dict[str, Any]:
        """The config as ``monitor.json`` spells it (camelCase, enum values), defaults included."""
        doc: dict[str, Any] = msgspec.to_builtins(self)
        return doc


def resolve_feature_test(
    config: MonitorConfig, feature: FeatureConfig
) -> tuple[DriftMethod, float]:
    """The effect-size method and threshold of a feature, after per-feature overrides."""
    default = (
        config.drift.numeric if feature.type is FeatureType.NUMERIC else config.drift.categorical
    )
    method = feature.method or default.method
    threshold = feature.threshold if feature.threshold is not None else default.threshold
    return method, threshold


# --- reading a document -----------------------------------------------------


def _canonical(value: Any, info: msgspec.inspect.Type, where: str, bad: dict[str, str]) -> Any:
    """``value`` with each loosely spelled enum value replaced by its canonical spelling.

    Strings that name no member are left for msgspec to refuse; ``bad`` maps
    their location to the allowed values, so the message can list them.
    """
    if isinstance(info, msgspec.inspect.UnionType):
        chosen = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        return _canonical(value, chosen[0], where, bad) if len(chosen) == 1 else value
    if isinstance(info, msgspec.inspect.EnumType) and isinstance(value, str):
        member = loose_member(info.cls, value)
        if member is None:
            bad[where] = ", ".join(m.value for m in info.cls)
            return value
        return member.value
    if isinstance(info, msgspec.inspect.StructType) and isinstance(value, Mapping):
        fields = {f.encode_name: f.type for f in info.fields}
        return {
            key: _canonical(item, fields[key], _join(where, key), bad) if key in fields else item
            for key, item in value.items()
        }
    if isinstance(info, msgspec.inspect.VarTupleType) and isinstance(value, list):
        return [
            _canonical(item, info.item_type, _join(where, str(i)), bad)
            for i, item in enumerate(value)
        ]
    return value


def _join(where: str, part: str) -> str:
    return f"{where}.{part}" if where else part


def _legacy(doc: dict[str, Any]) -> dict[str, Any]:
    # docs/contracts.md first showed drift.prediction = {"enabled": true}; the
    # CRD field is drift.predictionDrift. Read both.
    drift = doc.get("drift")
    if isinstance(drift, Mapping) and "prediction" in drift:
        drift = dict(drift)
        block = drift.pop("prediction")
        if isinstance(block, Mapping) and "predictionDrift" not in drift:
            drift["predictionDrift"] = block.get("enabled", True)
        doc = {**doc, "drift": drift}
    return doc


_ERROR = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_EXPECTED = re.compile(r"Expected `(?P<kind>[^`]+)`(?P<rule>.*?)(?:, got `[^`]+`)?")
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _parts(path: str) -> Iterator[str]:
    for key, index in _PATH_PART.findall(path):
        yield key or index


def _shown_at(doc: Any, location: str) -> str | None:
    """The repr of the value at ``location`` in ``doc`` (shortened), or None if there is none."""
    value = doc
    try:
        for part in location.split(".") if location else ():
            value = value[int(part)] if isinstance(value, list) else value[part]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _got(doc: Any, location: str) -> str:
    """`` (got <value>)`` for the value at ``location`` in ``doc``, or nothing if there is none."""
    shown = _shown_at(doc, location)
    return "" if shown is None else f" (got {shown})"


def describe_problem(
    error: msgspec.ValidationError,
    doc: Any,
    prefix: str = "",
    bad_enums: Mapping[str, str] | None = None,
) -> str:
    """One problem, as ``location: what is wrong (got value)``, from msgspec's message.

    ``doc`` is what was converted (to show the value given), ``prefix`` the
    location of that document, and ``bad_enums`` the allowed values at each
    location holding a string that names no enum member.
    """
    bad_enums = bad_enums or {}
    parsed = _ERROR.match(str(error))
    assert parsed is not None  # the pattern matches any text
    message = parsed["message"]
    location = ".".join([prefix, *_parts(parsed["path"] or "")]).strip(".")
    if field := re.fullmatch(r"Object missing required field `(.+)`", message):
        return f"{_join(location, field[1])}: is required"
    if field := re.fullmatch(r"Object contains unknown field `(.+)`", message):
        where = _join(location, field[1])
        return f"{where}: is not a known field{_got(doc, where)}"
    if message.startswith("Invalid enum value") and location in bad_enums:
        given = _shown_at(doc, location)
        return f"{location}: {given} is not allowed; use one of {bad_enums[location]}"
    if expected := _EXPECTED.fullmatch(message):
        rule = expected["rule"].replace("`", "")
        problem = f"must be {expected['kind']}{rule}{_got(doc, location)}"
        return f"{location}: {problem}" if location else problem
    return f"{location}: {message}" if location else message


def _problem(
    value: Any, kind: Any, doc: Any, where: str, bad_enums: Mapping[str, str]
) -> str | None:
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError as error:
        return describe_problem(error, doc, where, bad_enums)
    return None


def _section_problems(doc: Mapping[str, Any], bad_enums: Mapping[str, str]) -> list[str]:
    """The first problem in each top-level section (and in each feature) of ``doc``."""
    fields = {f.encode_name: f for f in msgspec.structs.fields(MonitorConfig)}
    problems = [
        f"{name}: is required"
        for name, field in fields.items()
        if field.required and name not in doc
    ]
    for name, value in doc.items():
        field = fields.get(name)
        if field is None:
            problems.append(f"{name}: is not a known field{_got(doc, name)}")
            continue
        if name == "features" and isinstance(value, list):
            # Each feature on its own, so that every bad one is named.
            bad_features = [
                problem
                for i, item in enumerate(value)
                if (problem := _problem(item, FeatureConfig, doc, f"features.{i}", bad_enums))
            ]
            if bad_features:
                problems.extend(bad_features)
                continue
        if problem := _problem(value, field.type, doc, name, bad_enums):
            problems.append(problem)
    return problems


def parse_monitor_config(doc: Any) -> MonitorConfig:
    """Validate a parsed ``monitor.json``; ConfigError lists each bad field, value and rule."""
    if not isinstance(doc, Mapping):
        raise ConfigError(f"monitor.json must be a JSON object, got {type(doc).__name__}")
    bad_enums: dict[str, str] = {}
    doc = _canonical(_legacy(dict(doc)), _config_type(), "", bad_enums)
    problems = _section_problems(doc, bad_enums)
    if not problems:
        try:
            return msgspec.convert(doc, MonitorConfig)
        except msgspec.ValidationError as error:
            problems = [describe_problem(error, doc, "", bad_enums)]
    raise ConfigError("monitor.json is not valid:\n  " + "\n  ".join(problems))


@functools.cache
def _config_type() -> msgspec.inspect.Type:
    return msgspec.inspect.type_info(MonitorConfig)
