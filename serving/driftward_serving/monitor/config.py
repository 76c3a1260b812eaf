"""The monitor configuration (the ConfigMap's ``monitor.json``) as validated pydantic models.

It is the CRD's ``spec.monitoring`` with defaults filled in, plus the model
identity (docs/contracts.md). Field names are the CRD's camelCase, enum values
are the CRD's spelling and are matched case-insensitively (so the lowercase
forms in older examples, such as ``"holm"`` or ``"ks"``, still read). A bad
document raises ``ConfigError`` whose message names each bad field, the value
given and what is allowed. This module must not read files or environment
variables: the caller hands it a parsed document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

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

E = TypeVar("E", bound=StrEnum)


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _enum_reader(enum: type[E]) -> Callable[[Any], Any]:
    by_squashed = {_squash(member.value): member for member in enum}

    def read(value: Any) -> Any:
        if isinstance(value, enum) or not isinstance(value, str):
            return value
        squashed = _squash(value)
        member = by_squashed.get(squashed) or by_squashed.get(_squash(_ALIASES.get(squashed, "")))
        if member is None:
            allowed = ", ".join(m.value for m in enum)
            raise ValueError(f"{value!r} is not allowed; use one of {allowed}")
        return member

    return read


LooseTask = Annotated[Task, BeforeValidator(_enum_reader(Task))]
LooseFeatureType = Annotated[FeatureType, BeforeValidator(_enum_reader(FeatureType))]
LooseFormat = Annotated[ReferenceFormat, BeforeValidator(_enum_reader(ReferenceFormat))]
LooseMethod = Annotated[DriftMethod, BeforeValidator(_enum_reader(DriftMethod))]
LooseCorrection = Annotated[Correction, BeforeValidator(_enum_reader(Correction))]
LooseMetric = Annotated[MetricName, BeforeValidator(_enum_reader(MetricName))]


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Kubernetes-style duration such as ``30s``, ``2m`` or ``1h30m``."""
    if not text or _DURATION.sub("", text) != "":
        raise ValueError(f"{text!r} is not a duration; write it like 30s, 2m or 1h30m")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(text))


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class ModelIdentity(_Section):
    """Which model version this monitor watches."""

    name: str = ""
    version: str = ""
    task: LooseTask = Task.CLASSIFICATION


class ReferenceConfig(_Section):
    """Where the reference lives and how it is pinned."""

    uri: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[a-f0-9]{64}$")
    format: LooseFormat = ReferenceFormat.CSV
    # Extensions over the CRD (optional): the dataset columns holding the
    # label, the model's prediction and its class probabilities, used to
    # profile the model's outputs and calibrate performance estimates.
    target_column: str | None = None
    prediction_column: str | None = None
    proba_columns: tuple[str, ...] = ()

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, uri: str) -> str:
        if not re.match(r"^(file|https?|s3)://.+", uri):
            raise ValueError(f"{uri!r} must start with file://, http://, https:// or s3://")
        return uri


class FeatureConfig(_Section):
    """One input feature, in the model's order, with optional per-feature overrides."""

    name: str = Field(min_length=1, max_length=253)
    type: LooseFeatureType
    method: LooseMethod | None = None
    threshold: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _method_suits_type(self) -> FeatureConfig:
        allowed = NUMERIC_METHODS if self.type is FeatureType.NUMERIC else CATEGORICAL_METHODS
        if self.method is not None and self.method not in allowed:
            names = ", ".join(m.value for m in allowed)
            raise ValueError(
                f"method {self.method.value!r} does not suit a {self.type.value} feature; "
                f"use one of {names}"
            )
        return self


class WindowConfig(_Section):
    """The sliding window of recent predictions."""

    size: int = Field(default=5000, ge=100, le=1_000_000)
    min_samples: int = Field(default=1000, ge=30)


class NumericDriftConfig(_Section):
    """Default method and effect-size floor for numeric features."""

    method: LooseMethod = DriftMethod.KOLMOGOROV_SMIRNOV
    threshold: float = Field(default=0.05, ge=0)

    @model_validator(mode="after")
    def _suits(self) -> NumericDriftConfig:
        if self.method not in NUMERIC_METHODS:
            names = ", ".join(m.value for m in NUMERIC_METHODS)
            raise ValueError(f"method {self.method.value!r} is not numeric; use one of {names}")
        if self.method is DriftMethod.KOLMOGOROV_SMIRNOV and self.threshold > 1:
            raise ValueError(f"threshold {self.threshold} is a KS distance and must be at most 1")
        return self


class CategoricalDriftConfig(_Section):
    """Default method and effect-size floor for categorical features."""

    method: LooseMethod = DriftMethod.CHI_SQUARE
    threshold: float = Field(default=0.05, ge=0)

    @model_validator(mode="after")
    def _suits(self) -> CategoricalDriftConfig:
        if self.method not in CATEGORICAL_METHODS:
            names = ", ".join(m.value for m in CATEGORICAL_METHODS)
            raise ValueError(f"method {self.method.value!r} is not categorical; use one of {names}")
        if self.method is DriftMethod.JENSEN_SHANNON and self.threshold > 1:
            raise ValueError(
                f"threshold {self.threshold} is a Jensen-Shannon distance and must be at most 1"
            )
        return self


class DriftConfig(_Section):
    """How drift is judged across features."""

    alpha: float = Field(default=0.01, gt=0, le=0.2)
    correction: LooseCorrection = Correction.HOLM
    numeric: NumericDriftConfig = NumericDriftConfig()
    categorical: CategoricalDriftConfig = CategoricalDriftConfig()
    prediction_drift: bool = True
    dataset_drift_share: float = Field(default=0.3, gt=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _prediction_block(cls, data: Any) -> Any:
        # docs/contracts.md first showed {"prediction": {"enabled": true}}; the
        # CRD field is predictionDrift. Read both.
        if isinstance(data, Mapping) and "prediction" in data:
            data = dict(data)
            block = data.pop("prediction")
            if isinstance(block, Mapping) and "predictionDrift" not in data:
                data["predictionDrift"] = block.get("enabled", True)
        return data


class PerformanceConfig(_Section):
    """The metric a policy acts on and the baseline it is compared with."""

    metric: LooseMetric
    baseline: float
    max_degradation: float = Field(default=0.05, ge=0)
    min_labels: int = Field(default=200, ge=10)


class MonitorConfig(_Section):
    """The whole ``monitor.json``."""

    model: ModelIdentity = ModelIdentity()
    reference: ReferenceConfig
    features: tuple[FeatureConfig, ...] = Field(min_length=1, max_length=500)
    window: WindowConfig = WindowConfig()
    interval: str = "30s"
    drift: DriftConfig = DriftConfig()
    performance: PerformanceConfig | None = None

    @field_validator("interval")
    @classmethod
    def _duration(cls, interval: str) -> str:
        seconds = parse_duration(interval)
        if not 0 < seconds <= 86_400:
            raise ValueError(f"{interval!r} must be more than 0 and at most 24h")
        return interval

    @field_validator("features")
    @classmethod
    def _unique(cls, features: tuple[FeatureConfig, ...]) -> tuple[FeatureConfig, ...]:
        seen: set[str] = set()
        for feature in features:
            if feature.name in seen:
                raise ValueError(f"feature {feature.name!r} is listed twice; names must be unique")
            seen.add(feature.name)
        return features

    @model_validator(mode="after")
    def _consistent(self) -> MonitorConfig:
        if self.window.min_samples > self.window.size:
            raise ValueError(
                f"window.minSamples ({self.window.min_samples}) must not exceed "
                f"window.size ({self.window.size})"
            )
        perf = self.performance
        if perf is not None:
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
        return self

    @property
    def interval_seconds(self) -> float:
        """The evaluation interval in seconds."""
        return parse_duration(self.interval)


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


def _describe(error: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "monitor.json"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{location}: is required"
    if error["type"] == "extra_forbidden":
        return f"{location}: is not a known field (got {error['input']!r})"
    shown = repr(error["input"])
    if len(shown) > 80:
        shown = shown[:77] + "..."
    if "is not allowed" in message or error["type"] == "value_error":
        return f"{location}: {message}"
    return f"{location}: {message} (got {shown})"


def parse_monitor_config(doc: Any) -> MonitorConfig:
    """Validate a parsed ``monitor.json``; ConfigError lists each bad field, value and rule."""
    if not isinstance(doc, Mapping):
        raise ConfigError(f"monitor.json must be a JSON object, got {type(doc).__name__}")
    try:
        return MonitorConfig.model_validate(doc)
    except ValidationError as error:
        problems = "\n  ".join(_describe(e) for e in error.errors(include_url=False))
        raise ConfigError(f"monitor.json is not valid:\n  {problems}") from None
