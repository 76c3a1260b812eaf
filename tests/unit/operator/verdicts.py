"""Real monitor windows and merged verdicts for the operator's tests (no HTTP, no cluster)."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from driftward_operator.aggregate import Aggregate, PodWindow, compute_aggregate, compute_selection
from driftward_serving.monitor.config import MonitorConfig, parse_monitor_config
from driftward_serving.monitor.counts import window_counts_to_json
from driftward_serving.monitor.profile import Profile, build_profile
from driftward_serving.monitor.window import LiveWindow
from tests.unit.monitor.data import FEATURES, config_doc, make_reference
from tests.unit.monitor.test_window import make_predictions


def build_profile_and_config(version: str = "v2") -> tuple[Profile, MonitorConfig]:
    """A seeded classification profile and a monitor config with a 1000-row window."""
    reference = make_reference(np.random.default_rng(7))
    profile = build_profile(reference, FEATURES, target="y", proba_columns=["p0", "p1"])
    doc = config_doc()
    doc["model"]["version"] = version
    return profile, parse_monitor_config(doc)


def build_pod_window(
    profile: Profile,
    config: MonitorConfig,
    pod: str,
    n: int,
    *,
    shift: float = 0.0,
    seed: int = 1,
    start: int = 0,
) -> PodWindow:
    """One pod's GET /v1/window answer after ``n`` predictions (x shifted by ``shift``)."""
    window = LiveWindow(profile, config, join_buffer_size=10_000)
    window.add_predictions(make_predictions(np.random.default_rng(seed), n, start, shift))
    return PodWindow(pod, document=window_counts_to_json(window.snapshot()))


def build_aggregate(now: datetime, *, shift: float, n: int = 600, version: str = "v2") -> Aggregate:
    """The merged verdict of two pods with ``n`` predictions each."""
    profile, config = build_profile_and_config(version)
    answers = [
        build_pod_window(profile, config, "pod-a", n, shift=shift, seed=1),
        build_pod_window(profile, config, "pod-b", n, shift=shift, seed=2, start=n),
    ]
    aggregate = compute_aggregate(compute_selection(answers), profile, config, now)
    assert aggregate is not None
    return aggregate
