"""Runs one peer drift detector inside its own virtualenv and prints one JSON line of timings.

``bench/monitor/run.py`` starts this script with the peer's interpreter
(``~/.cache/driftward/bench/monitor-peers/<peer>/bin/python``), so the peer's
pins never meet the project's. It imports only the standard library, NumPy
and the peer, and must not import driftward.

    python peer.py evaluate  evidently|alibi DATA_DIR
    python peer.py footprint evidently|alibi DATA_DIR WINDOW_ROWS

``DATA_DIR`` holds ``reference.npy`` and ``current.npy`` (rows x columns,
float64). ``evaluate`` times the peer's default full evaluation of the whole
current array against the whole reference; ``footprint`` times the import and
measures resident memory after it and at the peak of one evaluation of a
``WINDOW_ROWS`` window (what a sidecar built on the peer would hold).
"""

from __future__ import annotations

import json
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _import(peer: str) -> tuple[float, Any]:
    started = time.perf_counter()
    if peer == "evidently":
        from evidently import Report  # noqa: PLC0415
        from evidently.presets import DataDriftPreset  # noqa: PLC0415

        loaded: Any = (Report, DataDriftPreset)
    else:
        from alibi_detect.cd import TabularDrift  # noqa: PLC0415

        loaded = TabularDrift
    return time.perf_counter() - started, loaded


def _run(peer: str, loaded: Any, reference: np.ndarray, current: np.ndarray) -> dict[str, Any]:
    """Time the peer's default evaluation; returns seconds and how many columns drifted."""
    if peer == "evidently":
        import pandas as pd  # noqa: PLC0415

        report_class, preset = loaded
        names = [f"f{i}" for i in range(reference.shape[1])]
        ref_df = pd.DataFrame(reference, columns=names)
        cur_df = pd.DataFrame(current, columns=names)
        started = time.perf_counter()
        snapshot = report_class([preset()]).run(current_data=cur_df, reference_data=ref_df)
        seconds = time.perf_counter() - started
        summary = snapshot.dict()["metrics"][0]["value"]
        return {"seconds": seconds, "drifted": int(summary["count"]), "share": summary["share"]}
    started = time.perf_counter()
    detector = loaded(reference, p_val=0.05)  # its default: KS per column, Bonferroni
    result = detector.predict(current)
    seconds = time.perf_counter() - started
    # Its batch verdict is one flag; count the columns past the Bonferroni cut it applied.
    drifted = int(np.sum(np.asarray(result["data"]["p_val"]) < 0.05 / reference.shape[1]))
    return {"seconds": seconds, "drifted": drifted, "share": drifted / reference.shape[1]}


def main(argv: list[str]) -> int:
    """Run one measurement and print its JSON line."""
    warnings.filterwarnings("ignore")
    mode, peer, data = argv[0], argv[1], Path(argv[2])
    if peer not in ("evidently", "alibi") or mode not in ("evaluate", "footprint"):
        print(
            f"usage: peer.py evaluate|footprint evidently|alibi DIR (got {argv})", file=sys.stderr
        )
        return 2
    base_rss = _rss_mb()
    import_seconds, loaded = _import(peer)
    out: dict[str, Any] = {"peer": peer, "import_seconds": import_seconds}
    out["rss_after_import_mb"] = _rss_mb()
    out["rss_before_import_mb"] = base_rss
    reference = np.load(data / "reference.npy")
    current = np.load(data / "current.npy")
    if mode == "footprint":
        current = current[: int(argv[3])]
    else:
        # One small evaluation first, so that lazy imports and caches are not timed.
        _run(peer, loaded, reference[:1000], current[:1000])
    out.update(_run(peer, loaded, reference, current))
    out["peak_rss_mb"] = _peak_mb()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
