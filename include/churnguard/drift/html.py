"""The HTML drift report (Plotly): plotly.js either embedded once in the page or referenced as one shared asset.

An embedded page (``plotlyjs="inline"``, the CLI's) is self-contained and readable offline, but plotly.js
makes it ~4.8 MB. The daily run writes one copy of plotly.js per plotly version (:data:`PLOTLY_FILE`,
:func:`plotly_asset_bytes`) among the data root's shared assets and renders each day's page with ``plotlyjs``
set to where a day's page finds that asset, so a day's ``drift.html`` stays small.
"""

from __future__ import annotations

import html
from importlib.metadata import version
from pathlib import Path
from typing import Any

from churnguard.drift.profile import ReferenceProfile
from churnguard.drift.report import DriftReport

_COLOURS = {"stable": "#2e7d32", "moderate": "#f9a825", "critical": "#c62828"}

# Named by the plotly package version (it pins the plotly.js it bundles), so an upgrade writes a new file
# and pages rendered before it keep the plotly.js they were drawn with.
PLOTLY_FILE = f"plotly-{version('plotly')}.min.js"
"""Name of the shared plotly.js among the data root's assets."""


def plotly_asset_bytes() -> bytes:
    """plotly.min.js as bundled with the installed plotly package (no network)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode("utf-8")


def render_html(
    report: DriftReport | dict[str, Any],
    profile: ReferenceProfile | dict[str, Any],
    path: str | Path | None = None,
    plotlyjs: str = "inline",
) -> str:
    """The report as one HTML page; also written to ``path`` when given.

    Sections: a summary, PSI per feature sorted by importance-weighted drift, the model-score
    histograms, and reference vs current distributions of every feature.

    ``plotlyjs`` is ``"inline"`` (plotly.js embedded once: self-contained, ~4.8 MB) or the ``src`` of a
    ``.js`` file the page loads instead, relative to the page or absolute, e.g.
    ``DataRoot.asset_src(PLOTLY_FILE)``.

    >>> page = render_html(report, profile, plotlyjs="../_assets/plotly.min.js")  # doctest: +SKIP
    """
    if plotlyjs != "inline" and not plotlyjs.endswith(".js"):
        raise ValueError(f"plotlyjs must be 'inline' or the src of a .js file, got '{plotlyjs}'")
    import plotly.graph_objects as go
    import plotly.io as pio

    rep = report.to_dict() if isinstance(report, DriftReport) else report
    prof = profile.data if isinstance(profile, ReferenceProfile) else profile
    figures = [_psi_chart(go, rep)]
    if rep.get("prediction") and rep["prediction"].get("histogram"):
        hist = rep["prediction"]["histogram"]
        figures.append(_share_bars(go, "Model scores", _bin_labels(hist["edges"]), hist["reference"], hist["current"]))
    for name, feature in rep["features"].items():
        if feature["kind"] == "numeric" and feature.get("bins"):
            labels = _bin_labels(
                [prof["numeric"][name]["min"], *feature["bins"]["edges"], prof["numeric"][name]["max"]]
            )
            figures.append(_share_bars(go, name, labels, feature["bins"]["reference"], feature["bins"]["current"]))
        elif feature["kind"] != "numeric" and feature.get("categories"):
            cats = feature["categories"]
            keys = list(dict.fromkeys([*cats["reference"], *cats["current"]]))
            figures.append(
                _share_bars(
                    go,
                    name,
                    keys,
                    [cats["reference"].get(k, 0) for k in keys],
                    [cats["current"].get(k, 0) for k in keys],
                )
            )
    # plotly.js goes with the first figure only: embedded (True) or as <script src=…> (a path ending in .js)
    first = True if plotlyjs == "inline" else plotlyjs
    divs = [pio.to_html(fig, full_html=False, include_plotlyjs=i == 0 and first) for i, fig in enumerate(figures)]
    page = _page(rep, divs)
    if path is not None:
        Path(path).write_text(page, encoding="utf-8")
    return page


def _psi_chart(go: Any, rep: dict[str, Any]) -> Any:
    scored = [(n, f) for n, f in rep["features"].items() if f["psi"] is not None]
    scored.sort(key=lambda item: item[1]["weighted_psi"] or 0.0, reverse=True)
    fig = go.Figure(
        go.Bar(
            x=[n for n, _ in scored],
            y=[f["psi"] for _, f in scored],
            marker_color=[_COLOURS[f["severity"]] for _, f in scored],
            customdata=[[f["weighted_psi"], f["psi_threshold"]["moderate"]] for _, f in scored],
            hovertemplate="%{x}<br>PSI %{y:.4f}<br>weighted %{customdata[0]:.4f}"
            "<br>threshold %{customdata[1]:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        title="PSI per feature (sorted by importance-weighted drift)", height=380, margin={"t": 50, "b": 120}
    )
    return fig


def _share_bars(go: Any, title: str, labels: list[str], reference: list[float], current: list[float]) -> Any:
    ref_total, cur_total = sum(reference) or 1, sum(current) or 1
    fig = go.Figure(
        [
            go.Bar(name="reference", x=labels, y=[v / ref_total for v in reference]),
            go.Bar(name="current", x=labels, y=[v / cur_total for v in current]),
        ]
    )
    fig.update_layout(title=title, barmode="group", height=320, yaxis_title="share", margin={"t": 50})
    return fig


def _bin_labels(edges: list[float]) -> list[str]:
    return [f"[{lo:.4g}, {hi:.4g})" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def _page(rep: dict[str, Any], divs: list[str]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(f['kind'])}</td><td>{_fmt(f['psi'])}</td>"
        f"<td>{_fmt(f['test'] and f['test'].get('p_adjusted'))}</td>"
        f"<td style='color:{_COLOURS[f['severity']]}'>{f['severity']}</td><td>{f['drift_days']}</td>"
        f"<td>{html.escape(', '.join(f['notes']))}</td></tr>"
        for name, f in rep["features"].items()
    )
    colour = _COLOURS[rep["severity"]]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>churnguard drift report</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:left}</style>"
        "</head><body><h1>Drift report</h1>"
        f"<p>Severity <b style='color:{colour}'>{rep['severity']}</b>; {rep['n_drifted']} of "
        f"{rep['n_features']} features drifted; importance-weighted PSI {_fmt(rep['weighted_psi'])}; "
        f"{rep['n_rows']} rows; profile {html.escape(rep['profile_version'])}.</p>"
        "<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>adjusted p</th><th>severity</th>"
        f"<th>days drifted</th><th>notes</th></tr>{rows}</table>{_segment_table(rep.get('segments'))}"
        f"{''.join(divs)}</body></html>"
    )


def _segment_table(segments: dict[str, Any] | None) -> str:
    """One row per segment value: its sizes, whether it was tested, and the features drifting within it."""
    if not segments:
        return ""
    rows = []
    for col, column in segments["columns"].items():
        for value, block in column["values"].items():
            drifted = [(n, f) for n, f in block["features"].items() if f["drifted"]]
            listed = ", ".join(f"{n} ({_fmt(f['test'] and f['test'].get('p_adjusted'))})" for n, f in drifted)
            severity = block["severity"] or "stable"
            status = block["status"] if block["status"] == "tested" else block["reason"]
            rows.append(
                f"<tr><td>{html.escape(col)}</td><td>{html.escape(value)}</td><td>{block['n_reference']}</td>"
                f"<td>{block['n_current']}</td><td>{html.escape(status)}</td>"
                f"<td style='color:{_COLOURS[severity]}'>{block['severity'] or '–'}</td>"
                f"<td>{html.escape(listed)}</td></tr>"
            )
        if column["unseen"] or column["missing"]:
            unseen = ", ".join(f"{k} ({v})" for k, v in column["unseen"].items())
            rows.append(
                f"<tr><td>{html.escape(col)}</td><td colspan='6'>not in any segment: {column['missing']} missing"
                f"{html.escape('; unseen ' + unseen) if unseen else ''}</td></tr>"
            )
    return (
        f"<h2>Segments</h2><p>{segments['n_drifted']} drifted feature × segment pairs of {segments['n_tests']} "
        f"tests ({html.escape(segments['correction'])} across the segment tests; segments under "
        f"{segments['min_rows']} rows are not tested).</p><table><tr><th>segment</th><th>value</th>"
        "<th>reference rows</th><th>batch rows</th><th>status</th><th>severity</th>"
        f"<th>drifted features (adjusted p)</th></tr>{''.join(rows)}</table>"
    )


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"
