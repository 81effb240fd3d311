"""The dry-run report: one self-contained HTML file (plotly's JavaScript is
inlined once, so it opens offline) with the summary, the transition matrix as a
heatmap, the action mix by days-overdue bucket and the guard blocks."""

from __future__ import annotations

import html
from decimal import Decimal
from pathlib import Path

from escalation.portfolio.results import DryRunResult, PolicySummary, Tally

__all__ = ["render_report", "write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
.meta { color: #555; font-size: 0.9em; } .reason { text-align: left; max-width: 420px; font-size: 0.85em; }
"""


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _tally_table(title: str, table: dict[str, Tally]) -> str:
    rows = "".join(
        f"<tr><td class='l'>{html.escape(k)}</td><td>{t.accounts:,}</td><td>{_money(t.balance)}</td></tr>"
        for k, t in table.items()
    )
    head = f"<tr><th class='l'>{html.escape(title)}</th><th>accounts</th><th>balance</th></tr>"
    return f"<table>{head}{rows}</table>"


def _summary(summary: PolicySummary) -> str:
    info = summary.policy
    name = f"{info.id} {info.version} — {info.fingerprint}"
    head = f"<p class='meta'>{html.escape(name)}</p>"
    return head + _tally_table("status", summary.by_status) + _tally_table("action", summary.by_action)


def render_report(result: DryRunResult) -> str:
    """The report as an HTML string."""
    import plotly.graph_objects as go

    figures: list[str] = []

    def add(figure: go.Figure) -> None:
        figure.update_layout(margin={"l": 160, "r": 40, "t": 50, "b": 120}, height=480)
        figures.append(figure.to_html(full_html=False, include_plotlyjs=not figures, default_width="100%"))

    parts = [
        f"<h1>Dry-run at {html.escape(result.at.isoformat())}</h1>",
        f"<p>{result.accounts:,} accounts read; {result.decided:,} decided; "
        f"{result.errors:,} error rows.</p>",
    ]
    if result.baseline is not None:
        parts.append(
            f"<p><b>{result.changed:,}</b> accounts change decision "
            f"(balance {_money(result.changed_balance)}).</p>"
        )
        labels = sorted({k for pair in result.transitions for k in pair})
        z = [
            [result.transitions.get((old, new), Tally(0, Decimal(0))).accounts for new in labels]
            for old in labels
        ]
        heat = go.Figure(
            go.Heatmap(z=z, x=labels, y=labels, colorscale="Blues", text=z, texttemplate="%{text}")
        )
        heat.update_layout(
            title="Transition matrix: accounts by baseline → candidate decision",
            xaxis_title="candidate",
            yaxis_title="baseline",
        )
        heat.update_yaxes(autorange="reversed")  # read top-down, like the table
        add(heat)
    mix = result.candidate.by_bucket
    actions = sorted({a for row in mix.values() for a in row})
    bars = go.Figure(
        [go.Bar(name=a, x=list(mix), y=[mix[b].get(a, 0) for b in mix]) for a in actions],
    )
    bars.update_layout(
        barmode="stack", title="Candidate: action mix by days overdue", xaxis_title="days overdue"
    )
    add(bars)
    blocks = result.candidate.guard_blocks
    if blocks:
        guard = go.Figure(go.Bar(x=list(blocks.values()), y=list(blocks), orientation="h"))
        guard.update_layout(title="Candidate: accounts with an action blocked, by guard")
        add(guard)

    parts.append("".join(figures))
    parts.append("<h2>Candidate</h2>" + _summary(result.candidate))
    if result.baseline is not None:
        parts.append("<h2>Baseline</h2>" + _summary(result.baseline))
    if result.sample:
        rows = "".join(
            f"<tr><td class='l'>{html.escape(c.account_id)}</td><td>{c.days_overdue}</td>"
            f"<td>{_money(c.balance)}</td><td class='l'>{html.escape(c.baseline)}</td>"
            f"<td class='l'>{html.escape(c.candidate)}</td>"
            f"<td class='reason'>{html.escape(c.baseline_reason)}</td>"
            f"<td class='reason'>{html.escape(c.candidate_reason)}</td></tr>"
            for c in result.sample
        )
        parts.append(
            "<h2>Sample of changed accounts</h2><table><tr><th class='l'>account</th><th>days</th>"
            "<th>balance</th><th class='l'>baseline</th><th class='l'>candidate</th>"
            f"<th class='l'>baseline reason</th><th class='l'>candidate reason</th></tr>{rows}</table>"
        )
    if blocks:
        rows = "".join(
            f"<tr><td class='l'>{html.escape(g)}</td><td>{n:,}</td></tr>" for g, n in blocks.items()
        )
        parts.append(
            f"<h2>Guard blocks</h2><table><tr><th class='l'>guard</th><th>accounts</th></tr>{rows}</table>"
        )
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>escalation dry-run</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def write_report(result: DryRunResult, path: Path) -> None:
    """Write the report to ``path``."""
    path.write_text(render_report(result), encoding="utf-8")
