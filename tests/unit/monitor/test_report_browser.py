"""The HTML report, opened in headless Chromium, really shows a plot per feature.

The report is fetched from the app (in-process), written to a file and
screenshotted by Chromium from the file (no network). The PNG is decoded
with a small reader (no Pillow) and checked for the plots' colours where the
plots should be. Needs Debian's ``chromium`` package; without it the test
fails with the install command rather than skipping.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from driftward_serving.monitor.app import create_app
from driftward_serving.monitor.profile import Profile
from driftward_serving.monitor.report import CURRENT_COLOUR, DRIFTED_COLOUR, REFERENCE_COLOUR
from driftward_serving.monitor.settings import MonitorSettings
from driftward_serving.monitor.window import PredictionRecord

from .png import read_png
from .test_window import make_predictions

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

WIDTH, HEIGHT = 1200, 2000


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "headless Chromium is needed to check the HTML report; install it with "
        "`apt-get update && apt-get install -y chromium`",
        pytrace=False,
    )


def _rgb(hex_colour: str, opacity: float = 1.0) -> np.ndarray:
    colour = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
    return colour * opacity + 255.0 * (1 - opacity)


def _near(image: np.ndarray, colour: np.ndarray, tolerance: float = 10.0) -> np.ndarray:
    return np.all(np.abs(image.astype(np.float64) - colour) <= tolerance, axis=2)


def test_report_screenshot_shows_reference_and_current_plots(
    tmp_path: Path,
    profile: Profile,
    rng: np.random.Generator,
    write_monitor_files: Callable[..., Path],
) -> None:
    app = create_app(MonitorSettings(config_path=write_monitor_files(profile)), CollectorRegistry())
    records = make_predictions(rng, 1_000, shift=0.7)
    # A quarter of the colours are new: the unseen bucket shows up in red.
    records = [
        PredictionRecord(r.id, r.ts, [r.features[0], r.features[1], "violet"], r.output, r.proba)
        if i % 4 == 0
        else r
        for i, r in enumerate(records)
    ]
    payload = {
        "predictions": [
            {"id": r.id, "ts": r.ts, "features": r.features, "output": r.output, "proba": r.proba}
            for r in records
        ]
    }
    with TestClient(app) as client:
        assert client.post("/v1/records", json=payload).status_code == 200
        page = client.get("/report").text
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}",
            f"--screenshot={screenshot}",
            f"--window-size={WIDTH},{HEIGHT}",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    image = read_png(screenshot)
    assert image.shape == (HEIGHT, WIDTH, 3)
    keep = Path("/tmp/driftward-report.png")
    shutil.copy(screenshot, keep)  # for a person to look at

    reference = _near(image, _rgb(REFERENCE_COLOUR, 0.75))
    drifted = _near(image, _rgb(DRIFTED_COLOUR))
    current = _near(image, _rgb(CURRENT_COLOUR))
    assert reference.sum() > 2_000, "no reference bars"
    assert drifted.sum() > 500, "no drifted (red) current bars"
    assert current.sum() > 200, "no undrifted (blue) current bars"
    # Four plots in a two-column grid: reference bars in both columns and on two rows.
    rows, columns = np.nonzero(reference)
    assert (columns < WIDTH // 2).sum() > 500
    assert (columns >= WIDTH // 2).sum() > 500
    assert rows.max() - rows.min() > 250
    # The page is not blank: drawn pixels well beyond text.
    assert (image.min(axis=2) < 240).mean() > 0.03
