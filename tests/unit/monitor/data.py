"""Seeded data and config builders shared by the monitor's unit tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from driftward_serving.monitor.profile import FeatureSpec, FeatureType

FEATURES = [
    FeatureSpec("x", FeatureType.NUMERIC),
    FeatureSpec("z", FeatureType.NUMERIC),
    FeatureSpec("color", FeatureType.CATEGORICAL),
]
COLORS = ["red", "green", "blue"]
COLOR_P = [0.5, 0.3, 0.2]


def make_reference(rng: np.random.Generator, n: int = 4000) -> dict[str, Any]:
    """Columns of a classification reference: two numeric features, one categorical, labels."""
    x = rng.normal(size=n)
    z = rng.normal(5.0, 2.0, size=n)
    color = rng.choice(COLORS, size=n, p=COLOR_P).tolist()
    # A calibrated classifier: P(y=1) = sigmoid(2x), and the model predicts it.
    p1 = 1.0 / (1.0 + np.exp(-2.0 * x))
    y = (rng.uniform(size=n) < p1).astype(np.int64)
    return {"x": x, "z": z, "color": color, "y": y, "p0": 1 - p1, "p1": p1}


def config_doc(**overrides: Any) -> dict[str, Any]:
    """A valid monitor.json document for the FEATURES above, with overrides merged in."""
    doc: dict[str, Any] = {
        "model": {"name": "iris", "version": "v2", "task": "Classification"},
        "reference": {"uri": "file:///ref/profile.json", "sha256": "0" * 64, "format": "Profile"},
        "features": [{"name": f.name, "type": f.type.value} for f in FEATURES],
        "window": {"size": 1000, "minSamples": 200},
        "interval": "30s",
        "drift": {"alpha": 0.01, "correction": "Holm"},
        "performance": {
            "metric": "Accuracy",
            "baseline": 0.75,
            "maxDegradation": 0.05,
            "minLabels": 100,
        },
    }
    for key, value in overrides.items():
        doc[key] = value
    return doc
