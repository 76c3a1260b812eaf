"""Statistical quality over many seeded trials: false alarms at nominal, power at the defaults.

Each test simulates reference profiles and window counts (see ``simulate``) and
runs the pure ``compute_verdict``/``compute_*`` functions the monitor and the
operator use. The peers' traps are reproduced next to our tests:

- one-sample chi-square against reference proportions taken as exact;
- a fixed distance cut-off with no significance test;
- no correction across features.

Trial counts are chosen so that the rates are meaningful: the binomial standard
error of a rate near 1% over 500 trials is 0.45%.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as scipy_stats
from scipy.special import chdtrc

from driftward_serving.monitor.config import MonitorConfig, parse_monitor_config
from driftward_serving.monitor.counts import WindowCounts
from driftward_serving.monitor.profile import FeatureProfile, Profile, build_numeric_profile
from driftward_serving.monitor.stats import (
    Correction,
    compute_chi_square_from_counts,
    compute_corrected_p_values,
    compute_ks_from_counts,
)
from driftward_serving.monitor.verdict import State, compute_verdict

from .simulate import (
    rank_counts,
    simulate_categorical_counts,
    simulate_categorical_profile,
    simulate_numeric_counts,
    simulate_numeric_profiles,
)

DEFAULT_WINDOW = 5000
N_REFERENCE = 5000
CATEGORY_P = np.array([0.30, 0.25, 0.20, 0.15, 0.10])


def _config(n_numeric: int, n_categorical: int, **drift: Any) -> MonitorConfig:
    """The CRD's defaults, over n numeric and k categorical features."""
    features = [{"name": f"n{i}", "type": "Numeric"} for i in range(n_numeric)]
    features += [{"name": f"c{i}", "type": "Categorical"} for i in range(n_categorical)]
    doc: dict[str, Any] = {
        "reference": {"uri": "file:///ref.json", "sha256": "0" * 64, "format": "Profile"},
        "features": features,
        "drift": {"predictionDrift": False, **drift},
    }
    return parse_monitor_config(doc)


def _trial(
    rng: np.random.Generator,
    config: MonitorConfig,
    n_numeric: int,
    n_categorical: int,
    *,
    numeric_shift: float = 0.0,
    categorical_q: np.ndarray | None = None,
) -> tuple[Profile, WindowCounts]:
    """One reference and one window; feature n0 shifted, c0 drawn from categorical_q."""
    profiles: list[FeatureProfile] = []
    counts: dict[str, np.ndarray] = {}
    numerics = simulate_numeric_profiles(rng, N_REFERENCE, [f"n{i}" for i in range(n_numeric)])
    for i, numeric in enumerate(numerics):
        profiles.append(numeric)
        shift = numeric_shift if i == 0 else 0.0
        counts[numeric.name] = simulate_numeric_counts(rng, numeric, DEFAULT_WINDOW, shift)
    for i in range(n_categorical):
        categorical = simulate_categorical_profile(rng, N_REFERENCE, CATEGORY_P, name=f"c{i}")
        profiles.append(categorical)
        q = categorical_q if (i == 0 and categorical_q is not None) else CATEGORY_P
        counts[categorical.name] = simulate_categorical_counts(rng, DEFAULT_WINDOW, q)
    profile = Profile(features=tuple(profiles), rows=N_REFERENCE)
    window = WindowCounts(
        profile_digest="", samples=DEFAULT_WINDOW, first_ts=None, last_ts=None, features=counts
    )
    return profile, window


def test_simulated_reference_counts_match_the_real_builder() -> None:
    rng = np.random.default_rng(0)
    for n in (200, 1_001, 5_000):
        values = rng.normal(size=n)
        built = build_numeric_profile("x", values)
        lower = np.floor(np.linspace(0.0, 1.0, 101) * (n - 1)).astype(np.int64)
        counts = rank_counts(np.sort(values)[lower], built.edges, lower, n)
        np.testing.assert_array_equal(built.counts, counts)


def test_no_drift_over_50_features_keeps_false_alarms_at_nominal() -> None:
    rng = np.random.default_rng(101)
    trials, alpha = 500, 0.01
    defaults = _config(40, 10)
    dataset_alarms = feature_alarms = significance_alarms = 0
    for _ in range(trials):
        profile, window = _trial(rng, defaults, 40, 10)
        verdict = compute_verdict(profile, defaults, window, now=0.0)
        dataset_alarms += verdict.drift.state is State.DRIFTED
        feature_alarms += bool(verdict.drift.drifted_features)
        # The same corrected p-values with the effect floors off: significance alone.
        significance_alarms += any(
            e.corrected_p is not None and e.corrected_p < alpha for e in verdict.drift.features
        )
    # The product's rule (CRD defaults: Holm, alpha 0.01, effect floors, 30% share).
    assert dataset_alarms / trials <= alpha
    assert feature_alarms / trials <= alpha
    # The correction alone, with the effect floors off: the family-wise rate holds
    # within two binomial standard errors of alpha.
    margin = 2 * math.sqrt(alpha * (1 - alpha) / trials)
    assert significance_alarms / trials <= alpha + margin


def test_a_quarter_sigma_shift_in_one_numeric_feature_is_found_at_the_defaults() -> None:
    rng = np.random.default_rng(102)
    trials = 200
    config = _config(40, 10)
    found = 0
    for _ in range(trials):
        profile, window = _trial(rng, config, 40, 10, numeric_shift=0.25)
        verdict = compute_verdict(profile, config, window, now=0.0)
        found += "n0" in verdict.drift.drifted_features
    assert found / trials >= 0.95


def test_a_ten_point_frequency_shift_in_one_categorical_feature_is_found_at_the_defaults() -> None:
    rng = np.random.default_rng(103)
    trials = 200
    config = _config(40, 10)
    # Category c0 moves from 30% to 40%; the others give up share in proportion.
    shifted = np.concatenate([[0.40], CATEGORY_P[1:] * (0.60 / CATEGORY_P[1:].sum())])
    found = 0
    for _ in range(trials):
        profile, window = _trial(rng, config, 40, 10, categorical_q=shifted)
        verdict = compute_verdict(profile, config, window, now=0.0)
        found += "c0" in verdict.drift.drifted_features
    assert found / trials >= 0.95


def test_two_sample_chi_square_avoids_the_one_sample_trap() -> None:
    """Peers test window counts against reference proportions as if they were exact."""
    rng = np.random.default_rng(104)
    trials, alpha, k = 1_000, 0.05, 10
    p = np.full(k, 1 / k)
    trap = ours = 0
    for _ in range(trials):
        reference = rng.multinomial(5_000, p)
        current = rng.multinomial(5_000, p)
        expected = current.sum() * reference / reference.sum()
        trap_statistic = np.sum((current - expected) ** 2 / expected)
        trap += chdtrc(k - 1, trap_statistic) < alpha
        ours += compute_chi_square_from_counts(reference, current).p_value < alpha
    margin = 2 * math.sqrt(alpha * (1 - alpha) / trials)
    assert trap / trials > 0.4  # the reference's own noise doubles the statistic: ~50%
    assert ours / trials <= alpha + margin


def _normalised_wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    return float(scipy_stats.wasserstein_distance(reference, current) / reference.std(ddof=1))


def _single_feature_verdict(
    reference: np.ndarray, current: np.ndarray, config: MonitorConfig
) -> bool:
    profile = Profile(features=(build_numeric_profile("n0", reference),), rows=reference.size)
    numeric = profile.features[0]
    counts = np.bincount(numeric.bin_values(current), minlength=numeric.n_bins)  # type: ignore[union-attr]
    window = WindowCounts("", current.size, None, None, {"n0": counts})
    return bool(compute_verdict(profile, config, window, now=0.0).drift.drifted_features)


def test_significance_gate_avoids_the_fixed_cut_off_trap() -> None:
    """A fixed distance cut-off (normalised Wasserstein > 0.1, no test) fails both ways."""
    rng = np.random.default_rng(105)
    alpha = 0.01
    # One config for both regimes: Wasserstein effect floor 0.05 (the CRD's default
    # threshold), KS p-value, alpha 0.01.
    base = {
        "reference": {"uri": "file:///r", "sha256": "0" * 64},
        "features": [{"name": "n0", "type": "Numeric", "method": "Wasserstein"}],
        "drift": {"alpha": alpha, "predictionDrift": False},
    }
    small = parse_monitor_config({**base, "window": {"size": 200, "minSamples": 100}})
    large = parse_monitor_config({**base, "window": {"size": 10_000, "minSamples": 1_000}})

    trials = 1_000
    trap_false = ours_false = 0
    for _ in range(trials):  # 200-row windows against a 200-row reference, no drift
        reference, current = rng.normal(size=200), rng.normal(size=200)
        trap_false += _normalised_wasserstein(reference, current) > 0.1
        ours_false += _single_feature_verdict(reference, current, small)
    margin = 2 * math.sqrt(alpha * (1 - alpha) / trials)
    assert trap_false / trials > 0.2
    assert ours_false / trials <= alpha + margin

    trials = 200
    trap_found = ours_found = 0
    for _ in range(trials):  # 10k rows, a 0.1 sigma shift
        reference, current = rng.normal(size=10_000), rng.normal(0.1, 1.0, size=10_000)
        trap_found += _normalised_wasserstein(reference, current) > 0.1
        ours_found += _single_feature_verdict(reference, current, large)
    assert trap_found / trials < 0.75  # the cut-off sits on the shift: a coin toss
    assert ours_found / trials >= 0.95


def test_correction_avoids_the_uncorrected_family_wise_trap() -> None:
    """Without a correction, 25 columns at alpha 0.05 raise a false alarm most of the time."""
    rng = np.random.default_rng(106)
    trials, alpha, columns = 500, 0.05, 25
    corrections = (Correction.BONFERRONI, Correction.HOLM, Correction.BENJAMINI_HOCHBERG)
    uncorrected = 0
    corrected = dict.fromkeys(corrections, 0)
    for _ in range(trials):
        p_values = []
        for profile in simulate_numeric_profiles(rng, N_REFERENCE, ["x"] * columns):
            current = simulate_numeric_counts(rng, profile, DEFAULT_WINDOW)
            p_values.append(compute_ks_from_counts(profile.counts[:-1], current[:-1]).p_value)
        uncorrected += min(p_values) < alpha
        for correction in corrections:
            corrected[correction] += compute_corrected_p_values(p_values, correction).min() < alpha
    margin = 2 * math.sqrt(alpha * (1 - alpha) / trials)
    assert uncorrected / trials > 0.5  # 1 - 0.95^25 = 72% for exact tests
    for correction, alarms in corrected.items():
        assert alarms / trials <= alpha + margin, correction
