"""The HTML drift report: a page a person opens in a browser, with inline SVG plots.

One plot per feature (and for the model's outputs) draws the reference
distribution against the current window's, next to the test, p-values and
effect size, and tables for realized and estimated performance. Plots are
hand-written SVG, so the page needs no JavaScript, no network and no plotting
library (matplotlib alone would add ~1 s and ~40 MB to the sidecar).

Pure: it renders strings from a profile, window counts and a verdict; it must
not do I/O.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

import numpy as np

from driftward_serving.monitor.counts import WindowCounts
from driftward_serving.monitor.profile import (
    OUTPUT_NAME,
    UNSEEN,
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    Profile,
)
from driftward_serving.monitor.verdict import (
    FeatureEvidence,
    State,
    Verdict,
    compute_quantile_groups,
)

PLOT_WIDTH, PLOT_HEIGHT = 520, 200
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 44, 12, 14, 46
DISPLAY_BINS = 20
MAX_CATEGORIES_SHOWN = 16
REFERENCE_COLOUR = "#8a99ad"
CURRENT_COLOUR = "#1f6fd1"
DRIFTED_COLOUR = "#d62728"
STATE_COLOURS = {
    State.OK: "#2ca02c",
    State.DRIFTED: "#d62728",
    State.DEGRADED: "#d62728",
    State.INCONCLUSIVE: "#7f7f7f",
}

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1f24}
html{background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.meta{color:#57606a;font-size:13px} ul.reasons{font-size:14px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:14px}
.card{border:1px solid #d0d7de;border-radius:8px;padding:10px 12px}
.card h3{font-size:15px;margin:0 0 4px} .card.drifted{border-color:#d62728;border-width:2px}
.stats{font-size:12px;color:#57606a;margin-bottom:4px}
table{border-collapse:collapse;font-size:13px}
td,th{border-bottom:1px solid #eaeef2;padding:3px 10px;text-align:left}
th{background:#f6f8fa} .yes{color:#d62728;font-weight:600}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px -2px 10px;border-radius:2px}
"""


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _frame(body: str, x_labels: str, y_max: float, y_title: str) -> str:
    inner_h = PLOT_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    bottom = MARGIN_TOP + inner_h
    right = PLOT_WIDTH - MARGIN_RIGHT
    ticks = "".join(
        f'<line x1="{MARGIN_LEFT}" x2="{right}" y1="{bottom - f * inner_h:.1f}" '
        f'y2="{bottom - f * inner_h:.1f}" stroke="#eaeef2"/>'
        f'<text x="{MARGIN_LEFT - 4}" y="{bottom - f * inner_h + 4:.1f}" font-size="10" '
        f'text-anchor="end" fill="#57606a">{_fmt(y_max * f, 3)}</text>'
        for f in (0.0, 0.5, 1.0)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" '
        f'viewBox="0 0 {PLOT_WIDTH} {PLOT_HEIGHT}" role="img">'
        f"{ticks}{body}"
        f'<line x1="{MARGIN_LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#57606a"/>'
        f'<text x="10" y="{MARGIN_TOP + inner_h / 2}" font-size="10" fill="#57606a" '
        f'transform="rotate(-90 10 {MARGIN_TOP + inner_h / 2})" text-anchor="middle">'
        f"{html.escape(y_title)}</text>{x_labels}</svg>"
    )


def _numeric_svg(profile: NumericProfile, current: np.ndarray, colour: str) -> str:
    reference = profile.counts[:-1].astype(np.float64)
    window = current[:-1].astype(np.float64)
    # Display bins: groups of fine quantile bins, each ~5% of the reference;
    # the bins outside the reference range are folded into the end groups.
    group = compute_quantile_groups(reference, DISPLAY_BINS)
    ref_mass = np.bincount(group, weights=reference, minlength=DISPLAY_BINS)
    cur_mass = np.bincount(group, weights=window, minlength=DISPLAY_BINS)
    edges = profile.edges
    # Fine bin i (1..B) spans edges[i-1]..edges[i]; bins 0 and B+1 have no width.
    left = np.full(DISPLAY_BINS, np.inf)
    right = np.full(DISPLAY_BINS, -np.inf)
    for i in range(1, edges.size):
        g = group[i]
        left[g] = min(left[g], edges[i - 1])
        right[g] = max(right[g], edges[i])
    used = np.isfinite(left) & np.isfinite(right)
    lo, hi = float(edges[0]), float(edges[-1])
    span = hi - lo if hi > lo else 1.0
    width = np.where(used, np.maximum(right - left, span * 1e-3), 1.0)
    ref_density = np.where(used, ref_mass / max(ref_mass.sum(), 1.0) / width, 0.0)
    cur_density = np.where(used, cur_mass / max(cur_mass.sum(), 1.0) / width, 0.0)
    y_max = float(max(ref_density.max(), cur_density.max(), 1e-12)) * 1.05
    inner_w = PLOT_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    inner_h = PLOT_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    bottom = MARGIN_TOP + inner_h

    def x(value: float) -> float:
        return MARGIN_LEFT + (value - lo) / span * inner_w

    bars = []
    for g in np.flatnonzero(used):
        x0, x1 = x(float(left[g])), x(float(right[g]))
        w = max(x1 - x0, 1.0)
        rh = ref_density[g] / y_max * inner_h
        ch = cur_density[g] / y_max * inner_h
        bars.append(
            f'<rect x="{x0:.1f}" y="{bottom - rh:.1f}" width="{w:.1f}" height="{rh:.1f}" '
            f'fill="{REFERENCE_COLOUR}" fill-opacity="0.75"/>'
            f'<rect x="{x0 + 0.5:.1f}" y="{bottom - ch:.1f}" width="{max(w - 1, 0.5):.1f}" '
            f'height="{ch:.1f}" fill="{colour}" fill-opacity="0.35" stroke="{colour}" '
            'stroke-width="1.5"/>'
        )
    labels = "".join(
        f'<text x="{x(v):.1f}" y="{bottom + 14}" font-size="10" text-anchor="middle" '
        f'fill="#57606a">{_fmt(v, 3)}</text>'
        for v in np.linspace(lo, hi, 5)
    )
    outside = window[0] + window[-1]
    note = (
        f'<text x="{MARGIN_LEFT}" y="{bottom + 32}" font-size="10" fill="#57606a">'
        f"{int(outside)} current values outside the reference range "
        f"[{_fmt(lo, 3)}, {_fmt(hi, 3)}]</text>"
    )
    return _frame("".join(bars), labels + note, y_max, "density")


def _categorical_svg(profile: CategoricalProfile, current: np.ndarray, colour: str) -> str:
    reference = profile.counts.astype(np.float64)
    window = current.astype(np.float64)
    names = [*profile.categories, UNSEEN]
    p = reference / max(reference.sum(), 1.0)
    q = window / max(window.sum(), 1.0)
    order = [i for i in np.argsort(-(p + q), kind="stable") if p[i] + q[i] > 0]
    shown = order[:MAX_CATEGORIES_SHOWN]
    if UNSEEN in names and names.index(UNSEEN) not in shown and q[-1] > 0:
        shown = [*shown[:-1], len(names) - 1]
    y_max = float(max(p.max(initial=0), q.max(initial=0), 1e-12)) * 1.05
    inner_w = PLOT_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    inner_h = PLOT_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    bottom = MARGIN_TOP + inner_h
    slot = inner_w / max(len(shown), 1)
    bar = slot * 0.38
    parts, labels = [], []
    for n, i in enumerate(shown):
        x0 = MARGIN_LEFT + n * slot + slot * 0.1
        rh, ch = p[i] / y_max * inner_h, q[i] / y_max * inner_h
        fill = DRIFTED_COLOUR if names[i] == UNSEEN else colour
        parts.append(
            f'<rect x="{x0:.1f}" y="{bottom - rh:.1f}" width="{bar:.1f}" height="{rh:.1f}" '
            f'fill="{REFERENCE_COLOUR}"/>'
            f'<rect x="{x0 + bar:.1f}" y="{bottom - ch:.1f}" width="{bar:.1f}" height="{ch:.1f}" '
            f'fill="{fill}"/>'
        )
        label = names[i] if len(names[i]) <= 12 else names[i][:11] + "…"
        cx = x0 + bar
        labels.append(
            f'<text x="{cx:.1f}" y="{bottom + 12}" font-size="10" text-anchor="end" '
            f'fill="#57606a" transform="rotate(-30 {cx:.1f} {bottom + 12})">'
            f"{html.escape(label)}</text>"
        )
    return _frame("".join(parts), "".join(labels), y_max, "share")


def render_feature_svg(profile: FeatureProfile, current: np.ndarray, drifted: bool) -> str:
    """An inline SVG of one column's reference against current distribution."""
    colour = DRIFTED_COLOUR if drifted else CURRENT_COLOUR
    if isinstance(profile, NumericProfile):
        return _numeric_svg(profile, current, colour)
    return _categorical_svg(profile, current, colour)


def _card(profile: FeatureProfile, current: np.ndarray, evidence: FeatureEvidence) -> str:
    title = "model output" if profile.name == OUTPUT_NAME else profile.name
    state = "drifted" if evidence.drifted else ("not tested" if not evidence.tested else "no drift")
    stats = (
        f"{evidence.test} statistic {_fmt(evidence.statistic)} · p {_fmt(evidence.p_value)} · "
        f"corrected p {_fmt(evidence.corrected_p)} · {evidence.method.value} "
        f"{_fmt(evidence.effect)} (threshold {evidence.threshold}) · n={evidence.samples} "
        f"(reference {evidence.reference_samples})"
    )
    if evidence.missing:
        stats += f" · missing {evidence.missing}"
    if evidence.unseen:
        stats += f" · unseen/out-of-range {evidence.unseen}"
    css = "card drifted" if evidence.drifted else "card"
    return (
        f'<div class="{css}"><h3>{html.escape(title)} '
        f'<span class="meta">({evidence.kind.value}, {state})</span></h3>'
        f'<div class="stats">{html.escape(stats)}</div>'
        f"{render_feature_svg(profile, current, evidence.drifted)}</div>"
    )


def _performance_html(verdict: Verdict) -> str:
    parts = []
    perf = verdict.performance
    if perf is not None:
        rows = "".join(
            f"<tr><td>{m.metric.value}</td><td>{_fmt(m.value)}</td>"
            f"<td>{_fmt(m.baseline) if m.baseline is not None else ''}</td>"
            f"<td>{m.severity.value if m.severity else ''}</td></tr>"
            for m in perf.metrics
        )
        parts.append(
            f"<h2>Realized performance: {perf.state.value}</h2>"
            f'<p class="meta">{html.escape(perf.reason)} · {perf.labels} labels · '
            f"coverage {perf.label_coverage:.1%}</p>"
            f"<table><tr><th>metric</th><th>value</th><th>baseline</th><th>severity</th></tr>"
            f"{rows}</table>"
        )
    est = verdict.estimated
    if est is not None:
        parts.append(
            f"<h2>Estimated performance (before labels): {est.state.value}</h2>"
            f'<p class="meta">{html.escape(est.reason)}</p>'
            f"<table><tr><th>accuracy</th><th>macro F1</th><th>calibrated on reference</th>"
            f"<th>predictions</th></tr><tr><td>{_fmt(est.accuracy)}</td>"
            f"<td>{_fmt(est.f1_macro)}</td><td>{'yes' if est.calibrated else 'no'}</td>"
            f"<td>{est.samples}</td></tr></table>"
        )
    return "".join(parts)


def render_report(profile: Profile, counts: WindowCounts, verdict: Verdict) -> str:
    """The whole HTML page for one verdict."""
    colour = STATE_COLOURS[verdict.state]
    drift = verdict.drift
    cards = []
    for evidence in drift.features:
        cards.append(
            _card(profile.feature(evidence.feature), counts.features[evidence.feature], evidence)
        )
    if drift.prediction is not None and profile.output is not None and counts.output is not None:
        cards.append(_card(profile.output, counts.output, drift.prediction))
    table = "".join(
        f"<tr><td>{html.escape(e.feature)}</td><td>{e.test}</td><td>{_fmt(e.statistic)}</td>"
        f"<td>{_fmt(e.p_value)}</td><td>{_fmt(e.corrected_p)}</td><td>{e.method.value}</td>"
        f"<td>{_fmt(e.effect)}</td><td>{e.threshold}</td>"
        f'<td class="{"yes" if e.drifted else ""}">{"yes" if e.drifted else "no"}</td></tr>'
        for e in [*drift.features, *([drift.prediction] if drift.prediction else [])]
    )
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in verdict.reasons)
    window = verdict.window
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>driftward report: {html.escape(verdict.model)} "
        f"{html.escape(verdict.version)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(verdict.model or 'model')} {html.escape(verdict.version)} "
        f'<span class="badge" style="background:{colour}">{verdict.state.value}</span></h1>'
        f'<div class="meta">evaluated {_when(verdict.evaluated_at)} · window {window.samples} of '
        f"{window.size} predictions, {_when(window.first_ts)} to {_when(window.last_ts)} · "
        f"drift share {drift.share:.0%} (dataset drifts at {drift.dataset_drift_share:.0%}) · "
        f"alpha {drift.alpha}, {drift.correction} correction</div>"
        f'<ul class="reasons">{reasons}</ul>'
        '<div class="legend meta">'
        f'<span style="background:{REFERENCE_COLOUR}"></span>reference'
        f'<span style="background:{CURRENT_COLOUR}"></span>current window'
        f'<span style="background:{DRIFTED_COLOUR}"></span>current, drifted (or unseen)</div>'
        f'<h2>Features: {drift.state.value}</h2><div class="grid">{"".join(cards)}</div>'
        "<h2>Tests</h2><table><tr><th>feature</th><th>test</th><th>statistic</th><th>p</th>"
        "<th>corrected p</th><th>effect</th><th>value</th><th>threshold</th><th>drifted</th></tr>"
        f"{table}</table>{_performance_html(verdict)}</body></html>"
    )
