"""The contact-audit report: one self-contained HTML file (plotly's
JavaScript inlined once, so it opens offline) with violations over time and
by rule, the tables by rule and by actor, and a sample of violations."""

from __future__ import annotations

import html
import json
from pathlib import Path

from escalation.contacts.run import BREACHES, ContactAuditResult

__all__ = ["render_report", "write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
.meta { color: #555; font-size: 0.9em; } .cite { text-align: left; max-width: 480px; font-size: 0.8em; }
.legal { color: #b00020; font-weight: bold; }
"""
_COLOURS = {"legal": "#b00020", "self-regulatory": "#e08a00", "policy": "#3a6ea5"}


def _e(value: object) -> str:
    return html.escape(str(value))


def render_report(result: ContactAuditResult) -> str:
    """The report as an HTML string."""
    import plotly.graph_objects as go

    figures: list[str] = []

    def add(figure: go.Figure) -> None:
        figure.update_layout(margin={"l": 220, "r": 40, "t": 50, "b": 80}, height=440, barmode="stack")
        figures.append(figure.to_html(full_html=False, include_plotlyjs=not figures, default_width="100%"))

    days = list(result.by_day)
    add(
        go.Figure(
            [
                go.Bar(name=b, x=days, y=[result.by_day[d][b] for d in days], marker_color=_COLOURS[b])
                for b in BREACHES
            ],
            layout={"title": "Violations over time (by day of the contact)", "xaxis_title": "day"},
        )
    )
    rules = list(reversed(result.by_rule))
    add(
        go.Figure(
            [
                go.Bar(
                    name=b,
                    y=rules,
                    x=[result.by_rule[r].violations if result.by_rule[r].breach == b else 0 for r in rules],
                    orientation="h",
                    marker_color=_COLOURS[b],
                )
                for b in BREACHES
            ],
            layout={"title": "Violations by hold or guard"},
        )
    )
    verdict = (
        f"<p class='legal'>{result.legal:,} legal violations</p>"
        if result.legal
        else "<p>No legal violation found.</p>"
    )
    parts = [
        f"<h1>Contact audit: {_e(result.policy.id)} {_e(result.policy.version)}</h1>",
        f"<p class='meta'>{_e(result.policy.fingerprint)}; period {_e(result.start.isoformat())} .. "
        f"{_e(result.end.isoformat())} (end excluded); records exported {_e(result.at.isoformat())}</p>",
        f"<p>{result.accounts:,} accounts read; {result.audited:,} audited; {result.errors:,} error rows; "
        f"{result.contacts:,} outbound contacts; {result.violations:,} violations "
        f"({result.per_thousand(result.violations):.1f} per 1,000 contacts) in "
        f"{result.contacts_in_breach:,} contacts. "
        + ", ".join(f"{b}: {result.by_breach[b]:,}" for b in BREACHES)
        + f". {result.undated_accounts:,} accounts carry undated state, applied to the whole period.</p>",
        verdict,
        "".join(figures),
    ]
    rows = "".join(
        f"<tr><td class='l'>{_e(k)}</td><td class='l'>{_e(t.kind)}</td><td class='l'>{_e(t.breach)}</td>"
        f"<td class='l'>{_e(t.source)}</td><td>{t.violations:,}</td><td>{t.accounts:,}</td>"
        f"<td>{result.per_thousand(t.violations):.2f}</td><td class='cite'>{_e(t.cite or '')}</td></tr>"
        for k, t in result.by_rule.items()
    )
    parts.append(
        "<h2>By hold or guard</h2><table><tr><th class='l'>rule</th><th class='l'>kind</th>"
        "<th class='l'>breach</th>"
        "<th class='l'>source</th><th>violations</th><th>accounts</th><th>per 1,000 contacts</th>"
        f"<th class='l'>cite</th></tr>{rows}</table>"
    )
    rows = "".join(
        f"<tr><td class='l'>{_e(a)}</td><td>{t.contacts:,}</td>"
        + "".join(f"<td>{t.violations.get(b, 0):,}</td>" for b in BREACHES)
        + f"<td>{result.per_thousand(t.total, t.contacts):.2f}</td></tr>"
        for a, t in result.by_actor.items()
    )
    heads = "".join(f"<th>{b}</th>" for b in BREACHES)
    parts.append(
        f"<h2>By actor</h2><table><tr><th class='l'>actor</th><th>contacts</th>{heads}"
        f"<th>per 1,000 contacts</th></tr>{rows}</table>"
    )
    if result.sample:
        rows = "".join(
            f"<tr><td class='l'>{_e(v.account_id)}</td><td>{v.event_index}</td>"
            f"<td class='l'>{_e(v.at.isoformat())}</td>"
            f"<td class='l'>{_e(v.action)}/{_e(v.channel)}</td><td class='l'>{_e(v.actor)}</td>"
            f"<td class='l'>{_e(v.id)}</td><td class='l'>{_e(v.breach)}</td>"
            f"<td class='cite'>{_e(json.dumps(v.figures, ensure_ascii=False))}</td></tr>"
            for v in result.sample
        )
        parts.append(
            "<h2>First violations</h2><table><tr><th class='l'>account</th><th>event</th>"
            "<th class='l'>at</th><th class='l'>action/channel</th><th class='l'>actor</th>"
            "<th class='l'>rule</th><th class='l'>breach</th>"
            f"<th class='l'>figures</th></tr>{rows}</table>"
        )
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>escalation contact audit</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def write_report(result: ContactAuditResult, path: Path) -> None:
    """Write the report to ``path``."""
    path.write_text(render_report(result), encoding="utf-8")
