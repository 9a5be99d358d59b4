"""The day's validation page, rendered from its ``validation.json`` (:meth:`ValidationResult.to_dict`).

It shows churnguard's verdict, not GX's: overall and per expectation ``PASS``, ``WARN`` (failed at warn level:
reported, the batch goes on), ``FAIL`` (failed at error level: the batch is rejected) or ``SKIP`` (a failure
another issue covers), with the file, column, rule and observed value. The page is self-contained (inline
style, no script, nothing fetched), so it reads the same offline.

Example::

    page = render_page(json.loads(root.read_report(ds, "validation.json")), ds,
                       links={"validation.json": "validation.json"})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from html import escape
from typing import Any

LABELS = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "unreadable": "FAIL", "skip": "SKIP"}
_MEANING = {
    "pass": "every expectation was met.",
    "warn": "expectations failed at warn level only: reported and alerted, the batch went on to be scored.",
    "fail": "an expectation failed at error level: the batch is rejected (the daily run quarantines it).",
    "unreadable": "the batch could not be read as a table: nothing was validated, the batch is rejected.",
}
_RANK = {"fail": 0, "warn": 1, "skip": 2, "pass": 3}
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1rem; color: #1a202c; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.05rem; margin-top: 1.5rem; }
.status { display: inline-block; min-width: 3.2rem; text-align: center; padding: .1rem .4rem; border-radius: 4px;
          font-weight: 600; color: #fff; }
.pass { background: #2f855a; } .warn { background: #b7791f; } .fail { background: #c53030; }
.skip { background: #a0aec0; }
.muted { color: #718096; } a { color: #2b6cb0; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2rem 1rem; } dt { color: #4a5568; }
dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #edf2f7; vertical-align: top; }
summary { cursor: pointer; margin: .5rem 0; }
"""


def render_page(report: Mapping[str, Any], ds: str, links: Mapping[str, str] | None = None) -> str:
    """The validation page of day ``ds`` from its report; ``links`` (text -> href) are shown under the title.

    A report written before per-expectation outcomes were recorded lists its failed and warned expectations
    only (from its ``issues``), and says so.
    """
    status = str(report.get("status") or "unknown")
    rows = [dict(e) for e in report.get("expectations") or []]
    recorded_all = bool(rows)
    if not rows:
        rows = [{**i, "status": "fail" if i.get("severity") == "error" else "warn"} for i in report.get("issues") or []]
    rows.sort(key=lambda r: _RANK.get(r.get("status"), 0))  # stable: the report's order within a status
    counts = Counter(r.get("status") for r in rows)
    problems = [r for r in rows if r.get("status") != "pass"]
    passed = [r for r in rows if r.get("status") == "pass"]

    nav = " · ".join(f'<a href="{escape(href)}">{escape(text)}</a>' for text, href in (links or {}).items())
    facts = [
        ("File", report.get("source")),
        ("Dataset", report.get("dataset")),
        ("Reference profile", report.get("profile_version")),
        ("Suite", report.get("suite")),
        ("Rows", report.get("n_rows")),
        ("Validated at", report.get("validated_at")),
        ("Summary", report.get("summary")),
    ]
    tally = " · ".join(f"{counts[s]} {LABELS[s].lower()}" for s in ("fail", "warn", "skip", "pass") if counts[s])
    if recorded_all:
        scope = f"{len(rows)} expectations: {tally}"
    elif status == "unreadable":
        scope = "no expectation was evaluated"
    else:
        scope = (
            "this report lists its failed and warned expectations only (written before every "
            "expectation's outcome was recorded)"
        )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Validation {escape(ds)}: {escape(_label(status))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Validation of {escape(ds)}: {_badge(status)}</h1>",
        f"<p>{escape(_MEANING.get(status, 'status as recorded by the run.'))}</p>",
        f"<p>{nav}</p>" if nav else "",
        "<dl>",
        *(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts if v is not None),
        "</dl>",
        f"<p class='muted'>{escape(scope)}</p>",
    ]
    if problems:
        parts += ["<h2>Needs attention</h2>", _table(problems)]
    if passed:
        parts += [f"<details><summary>{len(passed)} passed</summary>", _table(passed), "</details>"]
    parts.append("</body></html>")
    return "".join(parts)


def _label(status: str | None) -> str:
    return LABELS.get(status or "", str(status or "?").upper())


def _badge(status: str | None) -> str:
    css = "fail" if status == "unreadable" else status if status in _RANK else "skip"
    return f"<span class='status {css}'>{escape(_label(status))}</span>"


def _table(rows: list[dict[str, Any]]) -> str:
    head = "".join(
        f"<th>{h}</th>" for h in ("status", "column", "rule", "level", "observed", "sample ids", "GX expectation")
    )
    body = "".join(
        f"<tr><td>{_badge(r.get('status'))}</td><td>{escape(_where(r))}</td><td>{escape(str(r.get('rule')))}</td>"
        f"<td>{escape(str(r.get('severity') or ''))}</td><td>{escape(str(r.get('observed') or ''))}</td>"
        f"<td>{escape(', '.join(r.get('sample_ids') or []))}</td>"
        f"<td class='muted'>{escape(str(r.get('expectation') or ''))}</td></tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _where(row: Mapping[str, Any]) -> str:
    if row.get("column") is not None:
        return str(row["column"])
    return "(file)" if row.get("rule") == "readable" else "(table)"
