"""The dry-run report: one self-contained HTML file (plotly's JavaScript is
inlined once, so it opens offline) that shows the change it exists to show:

* the header names both policies with their fingerprints, and how many
  accounts (and how much balance, in the policy's currency) change;
* the transitions off the diagonal, most severe first, then the matrix in
  ladder order with the unchanged diagonal greyed apart;
* the days overdue of the changed accounts, day by day (a moved threshold
  shows as one bar), and the baseline's and candidate's mix side by side;
* the changed accounts grouped by transition, with both reasons."""

from __future__ import annotations

import html
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from escalation.portfolio.results import AccountChange, DryRunResult, PolicySummary, Tally
from escalation.reasons import _format as fmt

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["render_report", "write_report"]

_STYLE = """
body { font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 1.5em auto; max-width: 1240px;
  color: #222; }
h1 { font-size: 1.45em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 1.6em;
  border-bottom: 1px solid #ddd; } h3 { font-size: 1em; margin: 1.2em 0 .3em; }
table { border-collapse: collapse; margin: .4em 0; font-size: .88em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
.policies td { text-align: left; }
.fp { font-family: ui-monospace, monospace; font-size: .82em; color: #555; }
.big { font-size: 1.3em; font-weight: 600; } .meta { color: #555; }
.diag { color: #999; background: #f6f6f6; font-style: italic; } .zero { color: #ccc; }
td.m { white-space: nowrap; } table.matrix th { font-size: .8em; max-width: 7em; overflow-wrap: anywhere; }
.up { color: #a40000; } .down { color: #1a5e1a; } .reason { text-align: left; max-width: 520px; }
.side { display: flex; gap: 1em; } .side > div { flex: 1; min-width: 0; }
"""

_WORDS = {
    "en": {
        "title": "Dry-run at {at}",
        "read": "{accounts} accounts read; {decided} decided; {errors} error rows.",
        "candidate": "candidate",
        "baseline": "baseline",
        "changed": "accounts change decision",
        "balance": "balance",
        "accounts": "accounts",
        "transitions": "What changes (most severe first)",
        "direction": "direction",
        "more": "more severe",
        "less": "milder",
        "matrix": "Transition matrix (rows: baseline, columns: candidate; the diagonal is unchanged)",
        "days": "Days overdue of the changed accounts (one bar per day)",
        "mix": "Decision mix by days overdue",
        "blocks": "Guard blocks (candidate)",
        "guard": "guard",
        "sample": "Changed accounts, by transition",
        "account": "account",
        "days_short": "days",
        "shown": "{shown} of {total} shown",
        "status": "status",
        "action": "action",
        "none": "No decision changes.",
    },
    "zh-CN": {
        "title": "试运行：{at}",
        "read": "读取{accounts}个账户；已决定{decided}个；错误行{errors}个。",
        "candidate": "候选策略",
        "baseline": "基线策略",
        "changed": "个账户的决定发生变化",
        "balance": "余额",
        "accounts": "账户数",
        "transitions": "变化（由重到轻）",
        "direction": "方向",
        "more": "更严厉",
        "less": "更温和",
        "matrix": "转移矩阵（行：基线，列：候选；对角线为未变化）",
        "days": "变化账户的逾期天数（每天一柱）",
        "mix": "按逾期天数的决定分布",
        "blocks": "规则拦截（候选策略）",
        "guard": "规则",
        "sample": "变化的账户（按转移分组）",
        "account": "账户",
        "days_short": "逾期天数",
        "shown": "显示{shown}个，共{total}个",
        "status": "状态",
        "action": "行动",
        "none": "没有决定发生变化。",
    },
}


class _Report:
    def __init__(self, result: DryRunResult) -> None:
        self.r = result
        self.w = _WORDS.get(result.locale, _WORDS["en"])
        self.locale = "zh-CN" if result.locale == "zh-CN" else "en"
        known = list(result.order)
        extra = sorted({k for pair in result.transitions for k in pair} - set(known))
        self.order = known + extra

    def money(self, value: Decimal) -> str:
        if not self.r.currency:
            return f"{value:,.2f}"
        return html.escape(fmt.money(value, self.r.currency, self.locale))  # type: ignore[arg-type]

    def rank(self, label: str) -> int:
        return self.order.index(label) if label in self.order else -1

    def header(self) -> str:
        r, w = self.r, self.w
        rows = []
        for name, summary in ((w["candidate"], r.candidate), (w["baseline"], r.baseline)):
            if summary is not None:
                info = summary.policy
                rows.append(
                    f"<tr><th class='l'>{html.escape(name)}</th><td><b>{html.escape(info.id)}</b> "
                    f"{html.escape(info.version)}</td>"
                    f"<td class='fp'>{html.escape(info.fingerprint)}</td></tr>"
                )
        parts = [
            f"<h1>{html.escape(w['title'].format(at=r.at.isoformat()))}</h1>",
            f"<table class='policies'>{''.join(rows)}</table>",
            "<p class='meta'>"
            + html.escape(
                w["read"].format(accounts=f"{r.accounts:,}", decided=f"{r.decided:,}", errors=f"{r.errors:,}")
            )
            + "</p>",
        ]
        if r.baseline is not None:
            parts.append(
                f"<p class='big'>{r.changed:,} {html.escape(w['changed'])} "
                f"({html.escape(w['balance'])} {self.money(r.changed_balance)})</p>"
            )
        return "\n".join(parts)

    def transitions(self) -> str:
        r, w = self.r, self.w
        moved = [(pair, t) for pair, t in r.transitions.items() if pair[0] != pair[1]]
        if not moved:
            return f"<h2>{html.escape(w['transitions'])}</h2><p>{html.escape(w['none'])}</p>"
        moved.sort(key=lambda item: (-max(self.rank(item[0][0]), self.rank(item[0][1])), -item[1].accounts))
        rows = []
        for (old, new), tally in moved:
            up = self.rank(new) > self.rank(old)
            way = f"▲ {w['more']}" if up else f"▼ {w['less']}"
            arrow = f"<span class='{'up' if up else 'down'}'>{way}</span>"
            rows.append(
                f"<tr><td class='l'>{html.escape(old)}</td><td class='l'>→ {html.escape(new)}</td>"
                f"<td class='l'>{arrow}</td><td>{tally.accounts:,}</td>"
                f"<td class='m'>{self.money(tally.balance)}</td></tr>"
            )
        head = (
            f"<tr><th class='l'>{w['baseline']}</th><th class='l'>{w['candidate']}</th>"
            f"<th class='l'>{w['direction']}</th><th>{w['accounts']}</th><th>{w['balance']}</th></tr>"
        )
        return f"<h2>{html.escape(w['transitions'])}</h2><table>{head}{''.join(rows)}</table>"

    def matrix(self) -> str:
        r = self.r
        labels = [k for k in self.order if any(k in pair for pair in r.transitions)]
        peak = max((t.accounts for (a, b), t in r.transitions.items() if a != b), default=1) or 1
        cells = []
        for old in labels:
            row = [f"<th class='l'>{html.escape(old)}</th>"]
            for new in labels:
                n = r.transitions.get((old, new), Tally(0, Decimal(0))).accounts
                if old == new:
                    row.append(f"<td class='diag'>{n:,}</td>" if n else "<td class='diag'></td>")
                elif n:
                    shade = 0.15 + 0.75 * n / peak
                    row.append(
                        f"<td style='background: rgba(200,40,30,{shade:.2f}); font-weight: 600'>{n:,}</td>"
                    )
                else:
                    row.append("<td class='zero'>·</td>")
            cells.append("<tr>" + "".join(row) + "</tr>")
        head = "<tr><th></th>" + "".join(f"<th>{html.escape(k)}</th>" for k in labels) + "</tr>"
        return f"<h2>{html.escape(self.w['matrix'])}</h2><table class='matrix'>{head}{''.join(cells)}</table>"

    def sample(self) -> str:
        r, w = self.r, self.w
        groups: dict[tuple[str, str], list[AccountChange]] = {}
        for change in r.sample:
            groups.setdefault((change.baseline, change.candidate), []).append(change)
        if not groups:
            return ""
        out = [f"<h2>{html.escape(w['sample'])}</h2>"]
        ordered = sorted(groups.items(), key=lambda g: -max(self.rank(g[0][0]), self.rank(g[0][1])))
        for (old, new), changes in ordered:
            total = r.transitions.get((old, new), Tally(len(changes), Decimal(0))).accounts
            shown = html.escape(w["shown"].format(shown=len(changes), total=total))
            out.append(
                f"<h3>{html.escape(old)} → {html.escape(new)} <span class='meta'>({shown})</span></h3>"
            )
            rows = "".join(
                f"<tr><td class='l'>{html.escape(c.account_id)}</td><td>{c.days_overdue}</td>"
                f"<td class='m'>{self.money(c.balance)}</td>"
                f"<td class='reason'>{html.escape(c.baseline_reason)}</td>"
                f"<td class='reason'>{html.escape(c.candidate_reason)}</td></tr>"
                for c in changes
            )
            out.append(
                f"<table><tr><th class='l'>{w['account']}</th><th>{w['days_short']}</th>"
                f"<th>{w['balance']}</th>"
                f"<th class='l'>{w['baseline']}</th><th class='l'>{w['candidate']}</th></tr>{rows}</table>"
            )
        return "\n".join(out)


def _mix_figure(summary: PolicySummary, title: str, order: list[str]) -> go.Figure:
    import plotly.graph_objects as go

    mix = summary.by_bucket
    actions = sorted(
        {a for row in mix.values() for a in row}, key=lambda a: order.index(a) if a in order else 99
    )
    figure = go.Figure([go.Bar(name=a, x=list(mix), y=[mix[b].get(a, 0) for b in mix]) for a in actions])
    figure.update_layout(barmode="stack", title=title, xaxis_title="days overdue", height=380)
    return figure


def render_report(result: DryRunResult) -> str:
    """The report as an HTML string."""
    import plotly.graph_objects as go

    report = _Report(result)
    w = report.w
    figures: list[str] = []

    def add(figure: go.Figure, height: int = 380) -> str:
        figure.update_layout(margin={"l": 60, "r": 20, "t": 50, "b": 60}, height=height)
        text = figure.to_html(full_html=False, include_plotlyjs=not figures, default_width="100%")
        figures.append(text)
        return str(text)

    parts = [report.header()]
    if result.baseline is not None:
        parts.append(report.transitions())
        if result.changed_days:
            keys = sorted({k for row in result.changed_days.values() for k in row})
            days = list(result.changed_days)
            bars = go.Figure(
                [go.Bar(name=k, x=days, y=[result.changed_days[d].get(k, 0) for d in days]) for k in keys]
            )
            bars.update_layout(barmode="stack", title=w["days"], xaxis={"title": "days overdue", "dtick": 1})
            parts.append(add(bars, 340))
        parts.append(report.matrix())
        parts.append(report.sample())
        base = add(_mix_figure(result.baseline, w["baseline"], report.order))
        cand = add(_mix_figure(result.candidate, w["candidate"], report.order))
        parts.append(
            f"<h2>{html.escape(w['mix'])}</h2><div class='side'><div>{base}</div><div>{cand}</div></div>"
        )
    else:
        mix = add(_mix_figure(result.candidate, w["candidate"], report.order))
        parts.append(f"<h2>{html.escape(w['mix'])}</h2>{mix}")
    blocks = result.candidate.guard_blocks
    if blocks:
        rows = "".join(
            f"<tr><td class='l'>{html.escape(g)}</td><td>{n:,}</td></tr>" for g, n in blocks.items()
        )
        parts.append(
            f"<h2>{html.escape(w['blocks'])}</h2><table><tr><th class='l'>{w['guard']}</th>"
            f"<th>{w['accounts']}</th></tr>{rows}</table>"
        )
    for name, summary in ((w["candidate"], result.candidate), (w["baseline"], result.baseline)):
        if summary is not None:
            statuses = _tally(report, w["status"], summary.by_status)
            actions = _tally(report, w["action"], summary.by_action)
            side = f"<div class='side'><div>{statuses}</div><div>{actions}</div></div>"
            parts.append(f"<h2>{html.escape(name)}</h2>{side}")
    for arm in result.arms.values():  # a champion/challenger dry-run: each arm under its own policy
        title = f"{result.experiment} · {arm.arm}: {arm.decisions.policy.id} {arm.decisions.policy.version}"
        side = f"<div class='side'><div>{_tally(report, w['status'], arm.decisions.by_status)}</div>"
        side += f"<div>{_tally(report, w['action'], arm.decisions.by_action)}</div></div>"
        parts.append(f"<h2>{html.escape(title)} ({arm.accounts:,}; Δ {arm.changed:,})</h2>{side}")
    body = "\n".join(parts)
    lang = "zh-CN" if result.locale == "zh-CN" else "en"
    return (
        f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'><title>escalation dry-run</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def _tally(report: _Report, title: str, table: dict[str, Tally]) -> str:
    w = report.w
    rows = "".join(
        f"<tr><td class='l'>{html.escape(k)}</td><td>{t.accounts:,}</td>"
        f"<td class='m'>{report.money(t.balance)}</td></tr>"
        for k, t in sorted(table.items(), key=lambda kv: report.rank(kv[0]))
    )
    head = f"<tr><th class='l'>{html.escape(title)}</th><th>{w['accounts']}</th><th>{w['balance']}</th></tr>"
    return f"<table>{head}{rows}</table>"


def write_report(result: DryRunResult, path: Path) -> None:
    """Write the report to ``path``."""
    path.write_text(render_report(result), encoding="utf-8")
