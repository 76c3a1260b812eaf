"""Fixtures for the monitor's unit tests: small seeded profiles, configs and files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from driftward_serving.monitor.config import MonitorConfig, parse_monitor_config
from driftward_serving.monitor.profile import Profile, build_profile, profile_to_json

from .data import FEATURES, config_doc, make_reference


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: every test sees the same data."""
    return np.random.default_rng(20240611)


@pytest.fixture
def reference(rng: np.random.Generator) -> dict[str, Any]:
    """Reference columns."""
    return make_reference(rng)


@pytest.fixture
def profile(reference: dict[str, Any]) -> Profile:
    """A classification profile with classes, output distribution and calibration."""
    return build_profile(reference, FEATURES, target="y", proba_columns=["p0", "p1"])


@pytest.fixture
def config() -> MonitorConfig:
    """A small-window config over the FEATURES."""
    return parse_monitor_config(config_doc())


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh Prometheus registry."""
    return CollectorRegistry()


@pytest.fixture
def write_monitor_files(tmp_path: Path) -> Callable[..., Path]:
    """Write a profile and a monitor.json pinning it; returns the config path."""

    def write(profile: Profile, **overrides: Any) -> Path:
        profile_path = tmp_path / "profile.json"
        data = json.dumps(profile_to_json(profile)).encode()
        profile_path.write_bytes(data)
        doc = config_doc(**overrides)
        doc["reference"] = {
            "uri": profile_path.as_uri(),
            "sha256": hashlib.sha256(data).hexdigest(),
            "format": "Profile",
        }
        config_path = tmp_path / "monitor.json"
        config_path.write_text(json.dumps(doc))
        return config_path

    return write
