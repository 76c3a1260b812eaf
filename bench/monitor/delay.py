"""Detection delay: how many samples after a shift starts until the monitor flags it.

Run from the repository root with the project's environment (``make bench-monitor``):

    .venv/bin/python bench/monitor/delay.py [--seeds 10] [--step 100]

For each scenario and seed, a reference of ``--reference-rows`` rows is
profiled, a ``LiveWindow`` (the monitor's own) is filled with a full window
of unshifted records, and then shifted records arrive ``--step`` at a time;
after each step the window is judged with ``compute_verdict``. The delay is
the number of shifted records ingested when the shifted feature is first
flagged. Scenarios: a mean shift of 0.1, 0.25, 0.5 and 1 sigma in one of 50
numeric features, and a 10-point frequency shift in one categorical feature
(40 numeric + 10 categorical).

The config is the CRD's defaults (window 5,000, minSamples 1,000, alpha 0.01,
Holm, effect floor 0.05, datasetDriftShare 0.3). One feature of 50 is a 2%
share, so at the default share rule the dataset-level state stays Ok while the
feature is flagged (the evidence the operator's policy reads); the table also
gives the delay until the state is Drifted when one feature is enough
(``datasetDriftShare`` 0.02), and the delay with the Wasserstein effect size.

A benchmark, not a test. It prints one table; nothing here does I/O.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftward_serving.monitor.config import MonitorConfig, parse_monitor_config
from driftward_serving.monitor.profile import FeatureSpec, FeatureType, build_profile
from driftward_serving.monitor.verdict import State, compute_verdict
from driftward_serving.monitor.window import LiveWindow, PredictionRecord

CATEGORIES = np.array(["a", "b", "c", "d", "e"])
CATEGORY_P = np.array([0.30, 0.25, 0.20, 0.15, 0.10])
# "a" moves from 30% to 40%; the others give up share in proportion.
CATEGORY_SHIFTED = np.concatenate([[0.40], CATEGORY_P[1:] * 0.60 / CATEGORY_P[1:].sum()])


@dataclass(frozen=True)
class Scenario:
    """One kind of shift in one feature of a 50-feature model."""

    name: str
    n_numeric: int
    n_categorical: int
    shift: float = 0.0
    categorical: bool = False


SCENARIOS = (
    Scenario("mean shift 0.1 sigma", 50, 0, shift=0.1),
    Scenario("mean shift 0.25 sigma", 50, 0, shift=0.25),
    Scenario("mean shift 0.5 sigma", 50, 0, shift=0.5),
    Scenario("mean shift 1 sigma", 50, 0, shift=1.0),
    Scenario("categorical +10 points", 40, 10, categorical=True),
)


def build_config(scenario: Scenario, **drift: Any) -> MonitorConfig:
    """The CRD's defaults over the scenario's features, with drift overrides."""
    features = [{"name": f"n{i}", "type": "Numeric"} for i in range(scenario.n_numeric)]
    features += [{"name": f"c{i}", "type": "Categorical"} for i in range(scenario.n_categorical)]
    return parse_monitor_config(
        {
            "reference": {"uri": "file:///bench", "sha256": "0" * 64, "format": "Profile"},
            "features": features,
            "drift": {"predictionDrift": False, **drift},
        }
    )


def draw_rows(
    rng: np.random.Generator, scenario: Scenario, n: int, *, shifted: bool
) -> list[list[object]]:
    """n records' features in schema order; feature 0 of its kind shifted if asked."""
    numeric = rng.normal(size=(n, scenario.n_numeric))
    if shifted and not scenario.categorical:
        numeric[:, 0] += scenario.shift
    rows: list[list[object]] = numeric.tolist()
    if scenario.n_categorical:
        columns = []
        for j in range(scenario.n_categorical):
            p = CATEGORY_SHIFTED if (shifted and scenario.categorical and j == 0) else CATEGORY_P
            columns.append(rng.choice(CATEGORIES, size=n, p=p).tolist())
        for i, row in enumerate(rows):
            row.extend(column[i] for column in columns)
    return rows


def shifted_name(scenario: Scenario) -> str:
    """The feature that shifts."""
    return "c0" if scenario.categorical else "n0"


def _records(rows: list[list[object]], first: int) -> list[PredictionRecord]:
    return [
        PredictionRecord(f"r{first + i}", float(first + i), row, None) for i, row in enumerate(rows)
    ]


def measure(
    scenario: Scenario, seed: int, reference_rows: int, step: int, limit: int
) -> dict[str, int | None]:
    """Shifted records ingested until each rule first fires (None: not within ``limit``)."""
    rng = np.random.default_rng(seed)
    specs = [FeatureSpec(f"n{i}", FeatureType.NUMERIC) for i in range(scenario.n_numeric)]
    specs += [FeatureSpec(f"c{i}", FeatureType.CATEGORICAL) for i in range(scenario.n_categorical)]
    reference = draw_rows(rng, scenario, reference_rows, shifted=False)
    columns = {spec.name: [row[j] for row in reference] for j, spec in enumerate(specs)}
    profile = build_profile(columns, specs)
    rules = {
        "flagged": build_config(scenario),
        "drifted": build_config(scenario, datasetDriftShare=0.02),
    }
    if not scenario.categorical:
        rules["wasserstein"] = build_config(scenario, numeric={"method": "Wasserstein"})
    window = LiveWindow(profile, rules["flagged"], join_buffer_size=rules["flagged"].window.size)
    size = rules["flagged"].window.size
    window.add_predictions(_records(draw_rows(rng, scenario, size, shifted=False), 0))
    target = shifted_name(scenario)
    found: dict[str, int | None] = dict.fromkeys(rules)
    found["false_before"] = int(
        target
        in compute_verdict(profile, rules["flagged"], window.snapshot(), 0.0).drift.drifted_features
    )
    sent = 0
    while sent < limit and any(found[rule] is None for rule in rules):
        window.add_predictions(_records(draw_rows(rng, scenario, step, shifted=True), size + sent))
        sent += step
        counts = window.snapshot()
        for rule, config in rules.items():
            if found[rule] is not None:
                continue
            verdict = compute_verdict(profile, config, counts, 0.0)
            hit = (
                verdict.drift.state is State.DRIFTED
                if rule == "drifted"
                else target in verdict.drift.drifted_features
            )
            if hit:
                found[rule] = sent
    return found


def summarise(delays: Sequence[int | None], limit: int) -> str:
    """Mean (min-max) over the seeds that detected, and how many did."""
    hits = [d for d in delays if d is not None]
    if not hits:
        return f"not within {limit:,}"
    text = f"{statistics.mean(hits):,.0f} ({min(hits):,}-{max(hits):,})"
    if len(hits) < len(delays):
        text += f", {len(hits)}/{len(delays)} seeds"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every scenario over the seeds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--step", type=int, default=100, help="records between evaluations")
    parser.add_argument("--reference-rows", type=int, default=50_000)
    parser.add_argument("--limit", type=int, default=10_000, help="give up after this many")
    args = parser.parse_args(argv)
    rows = []
    for scenario in SCENARIOS:
        results = [
            measure(scenario, 1000 + seed, args.reference_rows, args.step, args.limit)
            for seed in range(args.seeds)
        ]
        false_before = sum(int(r["false_before"] or 0) for r in results)
        rows.append(
            [
                scenario.name,
                summarise([r["flagged"] for r in results], args.limit),
                summarise([r["drifted"] for r in results], args.limit),
                summarise([r["wasserstein"] for r in results], args.limit)
                if not scenario.categorical
                else "n/a",
                f"{false_before}/{len(results)}",
            ]
        )
        print(f"  {scenario.name}: done", file=sys.stderr, flush=True)
    header = [
        "shift (one feature of 50)",
        "feature flagged (defaults)",
        "state Drifted (share 0.02)",
        "flagged, Wasserstein effect",
        "flagged before onset",
    ]
    cells = [header, *rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    print(
        f"\n## Detection delay: shifted samples until flagged (mean (min-max) over {args.seeds} "
        f"seeds; window 5,000, evaluated every {args.step} records; reference "
        f"{args.reference_rows:,} rows)\n"
    )
    for i, row in enumerate(cells):
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return 0


if __name__ == "__main__":
    sys.exit(main())
