"""monitor.json validation: CRD defaults, tolerant enum spelling, and errors that say how to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from driftward_serving.monitor.config import (
    ConfigError,
    DriftMethod,
    MetricName,
    ReferenceFormat,
    parse_duration,
    parse_monitor_config,
    resolve_feature_test,
)
from driftward_serving.monitor.profile import FeatureType, Task
from driftward_serving.monitor.sources import read_monitor_config
from driftward_serving.monitor.stats import Correction

from .data import config_doc

MINIMAL = {
    "reference": {"uri": "file:///ref.csv", "sha256": "a" * 64},
    "features": [{"name": "x", "type": "Numeric"}],
}


def test_defaults_are_the_crds() -> None:
    config = parse_monitor_config(MINIMAL)
    assert config.window.size == 5000
    assert config.window.min_samples == 1000
    assert config.interval_seconds == 30
    assert config.drift.alpha == 0.01
    assert config.drift.correction is Correction.HOLM
    assert config.drift.numeric.method is DriftMethod.KOLMOGOROV_SMIRNOV
    assert config.drift.numeric.threshold == 0.05
    assert config.drift.categorical.method is DriftMethod.CHI_SQUARE
    assert config.drift.categorical.threshold == 0.05
    assert config.drift.prediction_drift is True
    assert config.drift.dataset_drift_share == 0.3
    assert config.reference.format is ReferenceFormat.CSV
    assert config.model.task is Task.CLASSIFICATION
    assert config.performance is None


def test_contract_example_spellings_are_read() -> None:
    doc = {
        "model": {"name": "iris", "version": "v2", "task": "classification"},
        "reference": {"uri": "file:///ref/iris.csv", "sha256": "b" * 64, "format": "csv"},
        "features": [
            {"name": "sepal_length", "type": "numeric"},
            {"name": "color", "type": "categorical"},
        ],
        "drift": {
            "correction": "holm",
            "numeric": {"method": "ks", "threshold": 0.1},
            "categorical": {"method": "chisquare", "threshold": 0.1},
            "prediction": {"enabled": False},
        },
        "performance": {"metric": "accuracy", "baseline": 0.95},
    }
    config = parse_monitor_config(doc)
    assert config.drift.numeric.method is DriftMethod.KOLMOGOROV_SMIRNOV
    assert config.drift.categorical.method is DriftMethod.CHI_SQUARE
    assert config.drift.prediction_drift is False
    assert config.performance is not None
    assert config.performance.metric is MetricName.ACCURACY
    assert config.features[1].type is FeatureType.CATEGORICAL


def test_per_feature_overrides_win() -> None:
    doc = {
        **MINIMAL,
        "features": [
            {"name": "x", "type": "Numeric", "method": "Wasserstein", "threshold": 0.2},
            {"name": "y", "type": "Numeric"},
        ],
    }
    config = parse_monitor_config(doc)
    assert resolve_feature_test(config, config.features[0]) == (DriftMethod.WASSERSTEIN, 0.2)
    assert resolve_feature_test(config, config.features[1]) == (
        DriftMethod.KOLMOGOROV_SMIRNOV,
        0.05,
    )


def _error(doc: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_monitor_config(doc)
    return str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"drift": {"correction": "holmes"}},
            "drift.correction: 'holmes' is not allowed; use one "
            "of Bonferroni, Holm, BenjaminiHochberg, None",
        ),
        (
            {"drift": {"alpha": 0.5}},
            "drift.alpha: must be float <= 0.2 (got 0.5)",
        ),
        (
            {"window": {"size": 50}},
            "window.size: must be int >= 100 (got 50)",
        ),
        (
            {"window": {"size": 500, "minSamples": 600}},
            "window.minSamples (600) must not exceed window.size (500)",
        ),
        (
            {"interval": "soon"},
            "interval: 'soon' is not a duration; write it like 30s, 2m or 1h30m",
        ),
        (
            {"features": [{"name": "x", "type": "Numeric", "method": "ChiSquare"}]},
            "features.0: method 'ChiSquare' does not suit a numeric feature; use one of "
            "KolmogorovSmirnov, Wasserstein, PSI",
        ),
        (
            {"features": [{"name": "x", "type": "text"}]},
            "features.0.type: 'text' is not allowed; use one of numeric, categorical",
        ),
        (
            {"features": [{"name": "x", "type": "Numeric"}, {"name": "x", "type": "Numeric"}]},
            "feature 'x' is listed twice",
        ),
        (
            {"performance": {"metric": "MAE", "baseline": 1.0}},
            "performance.metric 'MAE' does not suit model.task 'classification'",
        ),
        (
            {"drift": {"numeric": {"threshold": 2}}},
            "threshold 2.0 is a KS distance and must be at most 1",
        ),
        ({"surprise": 1}, "surprise: is not a known field (got 1)"),
        ({"window": {"sizes": 10}}, "window.sizes: is not a known field (got 10)"),
        ({"features": []}, "features: must be array of length >= 1 (got [])"),
        ({"window": {"size": "big"}}, "window.size: must be int (got 'big')"),
    ],
)
def test_errors_name_field_value_and_rule(overrides: dict[str, Any], expected: str) -> None:
    assert expected in _error(config_doc(**overrides))


def test_every_bad_section_and_feature_is_listed() -> None:
    message = _error(
        config_doc(
            window={"size": 50},
            drift={"alpha": 0.5},
            features=[{"name": "x", "type": "text"}, {"name": "", "type": "Numeric"}],
        )
    )
    assert "window.size: must be int >= 100 (got 50)" in message
    assert "drift.alpha: must be float <= 0.2 (got 0.5)" in message
    assert "features.0.type: 'text' is not allowed" in message
    assert "features.1.name: must be str of length >= 1 (got '')" in message


def test_config_round_trips_through_its_json() -> None:
    config = parse_monitor_config(config_doc(drift={"numeric": {"method": "ks"}}))
    doc = config.to_json()
    assert doc["drift"]["numeric"]["method"] == "KolmogorovSmirnov"
    assert doc["window"]["minSamples"] == config.window.min_samples
    assert parse_monitor_config(doc) == config


def test_missing_fields_are_named() -> None:
    message = _error({"features": [{"name": "x", "type": "Numeric"}]})
    assert "reference: is required" in message


def test_bad_digest_is_named() -> None:
    message = _error({**MINIMAL, "reference": {"uri": "file:///r", "sha256": "XYZ"}})
    assert "reference.sha256" in message
    assert "'XYZ'" in message


def test_config_must_be_an_object() -> None:
    with pytest.raises(ConfigError, match="must be a JSON object, got list"):
        parse_monitor_config([])


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("250ms") == 0.25
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("10 s")


def test_reading_a_broken_file_says_where(tmp_path: Path) -> None:
    path = tmp_path / "monitor.json"
    path.write_text('{"features": [}')
    with pytest.raises(ConfigError, match=r"is not JSON: .* line 1 column 15"):
        read_monitor_config(path)
    with pytest.raises(ConfigError, match="cannot read the monitor config"):
        read_monitor_config(tmp_path / "absent.json")
