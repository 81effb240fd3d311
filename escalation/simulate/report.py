"""The simulation report: one self-contained HTML file (plotly's JavaScript
inlined once; fixed element ids, so the same result gives the same bytes).

* the header names both policies (with fingerprints), the response model, the
  horizon, the runs and the seed;
* the key figures of both policies and the candidate − baseline difference
  with its 95 % interval over the runs;
* cumulative recoveries and cost, and cumulative letters, calls and legal
  steps, day by day for both policies;
* volumes by tier per week; the roll-rate matrix (bucket at the start →
  state at the end); results by segment and by arm; guard blocks and holds;
  the conservation check."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from escalation.portfolio.report_html import _STYLE
from escalation.simulate._loop import ROLL_LIMITS, roll_bucket
from escalation.simulate._output import money

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from escalation.simulate.run import SimulationResult

__all__ = ["render_report", "write_report"]

_KEY = (
    ("actions", "actions"),
    ("cost", "cost"),
    ("collected", "payments collected"),
    ("net", "collected − cost"),
    ("payments", "payments"),
    ("cured", "accounts cured"),
    ("rolled", "rolls to the next 30-day bucket"),
    ("written_off", "written off"),
    ("promises_made", "promises made"),
    ("promises_kept", "promises kept"),
    ("promises_broken", "promises broken"),
    ("offers_made", "offers made (reached the customer)"),
    ("offers_accepted", "offers accepted (as a promise to pay)"),
    ("offers_blocked", "offer calls a guard forbade that day"),
    ("disputes", "disputes"),
    ("guard_blocks", "guard blocks"),
    ("hold", "account-days on hold"),
    ("active", "still in arrears at the end"),
    ("arrears_end", "arrears at the end"),
    ("charges", "charges added"),
)
_COLOURS = {"baseline": "#7f7f7f", "candidate": "#d62728"}
_EXTRA = "table.key td:first-child { text-align: left; } .ci { color: #555; font-size: .85em; }"


def _esc(value: object) -> str:
    return html.escape(str(value))


class _Report:
    def __init__(self, result: SimulationResult, doc: dict[str, Any]) -> None:
        self.r = result
        self.doc = doc
        self.labels = list(result.runs)
        self.figures = 0

    def fig(self, figure: go.Figure, height: int = 380) -> str:
        figure.update_layout(
            margin={"l": 60, "r": 20, "t": 50, "b": 50}, height=height, template="plotly_white"
        )
        self.figures += 1
        text = figure.to_html(
            full_html=False,
            include_plotlyjs=self.figures == 1,
            default_width="100%",
            div_id=f"figure-{self.figures}",
        )
        return str(text)

    def amount(self, metric: str, value: Any) -> str:
        if metric in ("cost", "collected", "net", "arrears_end", "charges", "balance_end"):
            return f"{self.r.currency} {value}"
        return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"

    def header(self) -> str:
        sim = self.doc["simulation"]
        rows = "".join(
            f"<tr><th class='l'>{_esc(label)}</th><td>{_esc(p['id'])} {_esc(p['version'])}</td>"
            f"<td class='fp'>{_esc(p['fingerprint'])}</td></tr>"
            for label, p in self.doc["policies"].items()
        )
        arms = sim["arms"]
        split = (
            (
                f"; champion/challenger split {1 - arms['share']:.0%} / {arms['share']:.0%} "
                f"(salt `{_esc(arms['salt'])}`)"
            )
            if arms
            else ""
        )
        return (
            f"<h1>Simulation: {sim['days']} days from {_esc(sim['start'])}</h1>"
            f"<p class='meta'>{sim['accounts']:,} accounts ({sim['error_rows']:,} error rows); "
            f"{sim['runs']} run(s), seed {sim['seed']}; response model <b>{_esc(sim['model']['id'])}</b> "
            f"({_esc(sim['model']['path'])}); evaluator {_esc(sim['backend'])}{split}.</p>"
            f"<table class='policies'>{rows}</table>"
        )

    def key_figures(self) -> str:
        totals, diff = self.doc["totals"], self.doc["difference"]
        head = "".join(f"<th>{_esc(label)}</th>" for label in self.labels)
        if diff:
            head += "<th>candidate − baseline (95 % interval)</th>"
        rows = []
        for metric, title in _KEY:
            cells = "".join(
                f"<td class='m'>{self.amount(metric, totals[lab][metric])}</td>" for lab in self.labels
            )
            if diff:
                d = diff[metric]
                ci = f" <span class='ci'>[{d['low']}, {d['high']}]</span>" if d["low"] is not None else ""
                cells += f"<td class='m'>{self.amount(metric, d['mean'])}{ci}</td>"
            rows.append(f"<tr><td>{_esc(title)}</td>{cells}</tr>")
        table = f"<table class='key'><tr><th></th>{head}</tr>{''.join(rows)}</table>"
        return f"<h2>Key figures (means over runs)</h2>{table}"

    def cumulative(self) -> str:
        import plotly.graph_objects as go

        e = self.r.exponent
        dates = self.r.dates
        money_fig, letters = go.Figure(), go.Figure()
        for label in self.labels:
            runs = self.r.runs[label]
            colour = _COLOURS.get(label)
            for metric, dash in (("collected", "solid"), ("cost", "dot")):
                series, total = [], 0.0
                for d in range(len(dates)):
                    total += sum(r.daily[d][metric] for r in runs) / len(runs)
                    series.append(float(money(total, e)))
                money_fig.add_trace(
                    go.Scatter(
                        x=dates,
                        y=series,
                        name=f"{label}: {metric}",
                        mode="lines",
                        line={"color": colour, "dash": dash},
                    )
                )
            policy = self.r.candidate if label == "candidate" else self.r.baseline
            threats = (
                {t.model.id for t in policy.tiers if "legal_threat" in t.model.tags} if policy else set()
            )
            groups = (
                ("letters", "solid", lambda k: k.endswith("/letter")),
                ("of which legal threats", "dashdot", lambda k, t=threats: k.split("/")[0] in t),
                ("calls", "dot", lambda k: k.endswith("/phone")),
                ("legal steps", "dash", lambda k: k.endswith("/legal")),
            )
            for name, dash, wanted in groups:
                keys = [k for k in sorted({k for r in runs for k in r.actions}) if wanted(k)]
                series, count = [], 0.0
                for d in range(len(dates)):
                    count += sum(r.actions[k][d] for r in runs for k in keys if k in r.actions)
                    series.append(count / len(runs))
                if series and series[-1]:
                    letters.add_trace(
                        go.Scatter(x=dates, y=series, name=f"{label}: {name}", mode="lines",
                                   line={"color": colour, "dash": dash})
                    )  # fmt: skip
        money_fig.update_layout(title=f"Cumulative recoveries and cost ({self.r.currency})")
        letters.update_layout(title="Cumulative letters, calls and legal steps")
        return f"<h2>Over time</h2>{self.fig(money_fig)}{self.fig(letters)}"

    def weekly(self) -> str:
        import plotly.graph_objects as go

        parts = []
        for label in self.labels:
            weeks = self.doc["weekly"][label]
            keys = sorted({k for w in weeks for k in w["by_action"]})
            x = [f"w{w['week']}" for w in weeks]
            bars = go.Figure([go.Bar(name=k, x=x, y=[w["by_action"].get(k, 0) for w in weeks]) for k in keys])
            bars.update_layout(barmode="stack", title=f"{label}: actions by tier per week")
            parts.append(f"<div>{self.fig(bars, 360)}</div>")
        return f"<h2>Volumes by tier per week</h2><div class='side'>{''.join(parts)}</div>"

    def rolls(self) -> str:
        starts = ["0"] + [roll_bucket(limit) for limit in ROLL_LIMITS] + [roll_bucket(ROLL_LIMITS[-1] + 1)]
        out = ["<h2>Roll-rate matrix (bucket at the start → state at the end; share of the row)</h2>"]
        out.append("<div class='side'>")
        for label in self.labels:
            matrix = self.doc["rolls"][label]
            ends = ["cured", *starts, "written off"]
            ends = [c for c in ends if any(c in row for row in matrix.values())]
            head = "".join(f"<th>{_esc(c)}</th>" for c in ends)
            rows = []
            for start in [s for s in starts if s in matrix]:
                row = matrix[start]
                total = sum(row.values()) or 1
                cells = "".join(
                    f"<td>{row.get(c, 0) / total:.1%}</td>" if row.get(c) else "<td class='zero'>·</td>"
                    for c in ends
                )
                rows.append(f"<tr><th class='l'>{_esc(start)}</th><td>{total:,.0f}</td>{cells}</tr>")
            out.append(
                f"<div><h3>{_esc(label)}</h3><table><tr><th class='l'>start</th><th>accounts</th>"
                f"{head}</tr>{''.join(rows)}</table></div>"
            )
        out.append("</div>")
        return "".join(out)

    def groups(self, name: str, title: str) -> str:
        tables = []
        for label in self.labels:
            table = self.doc[name][label]
            if not table:
                continue
            rows = "".join(
                f"<tr><td class='l'>{_esc(k)}</td><td>{v['accounts']:,.0f}</td><td>{v['actions']:,.0f}</td>"
                f"<td class='m'>{self.r.currency} {v['cost']}</td>"
                f"<td class='m'>{self.r.currency} {v['collected']}</td>"
                f"<td>{v['cured']:,.0f}</td><td>{v['written_off']:,.0f}</td></tr>"
                for k, v in table.items()
            )
            tables.append(
                f"<div><h3>{_esc(label)}</h3><table><tr><th class='l'>{_esc(name)}</th><th>accounts</th>"
                f"<th>actions</th><th>cost</th><th>collected</th><th>cured</th><th>written off</th></tr>"
                f"{rows}</table></div>"
            )
        return f"<h2>{_esc(title)}</h2><div class='side'>{''.join(tables)}</div>" if tables else ""

    def counts(self, name: str, title: str) -> str:
        tables = []
        for label in self.labels:
            table = self.doc[name][label]
            rows = "".join(
                f"<tr><td class='l'>{_esc(k)}</td><td>{v:,.0f}</td></tr>" for k, v in table.items()
            )
            tables.append(
                f"<div><h3>{_esc(label)}</h3><table>{rows or '<tr><td>none</td></tr>'}</table></div>"
            )
        return f"<h2>{_esc(title)}</h2><div class='side'>{''.join(tables)}</div>"

    def conservation(self) -> str:
        rows = []
        for label in self.labels:
            for run, c in enumerate(self.doc["conservation"][label]):
                rows.append(
                    f"<tr><td class='l'>{_esc(label)}</td><td>{run}</td><td class='m'>{c['start']}</td>"
                    f"<td class='m'>{c['payments']}</td><td class='m'>{c['charges']}</td>"
                    f"<td class='m'>{c['end']}</td>"
                    f"<td>{c['accounts']:,}</td><td>{c['cured']:,}</td><td>{c['active']:,}</td>"
                    f"<td>{c['written_off']:,}</td><td>{c['errors']:,}</td></tr>"
                )
        return (
            "<h2>Conservation (checked: start − payments + charges = end; accounts in = out)</h2><table>"
            "<tr><th class='l'>policy</th><th>run</th><th>balance at start</th><th>payments</th>"
            "<th>charges</th>"
            "<th>balance at end</th><th>accounts</th><th>cured</th><th>active</th><th>written off</th>"
            f"<th>error rows</th></tr>{''.join(rows)}</table>"
        )


def render_report(result: SimulationResult, doc: dict[str, Any]) -> str:
    """The report as an HTML string (``doc``: the summary JSON data)."""
    report = _Report(result, doc)
    parts = [
        report.header(),
        report.key_figures(),
        report.cumulative(),
        report.weekly(),
        report.rolls(),
        report.groups("segments", "By segment (means over runs)"),
    ]
    if result.arms is not None:
        parts.append(
            report.groups(
                "arms",
                "By arm (each arm under each policy; the experiment runs the "
                "champion arm on the baseline, the challenger arm on the candidate)",
            )
        )
    parts += [
        report.counts("guard_blocks", "Guard blocks (account-days)"),
        report.counts("holds", "Holds (account-days)"),
        report.conservation(),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>escalation simulation</title>"
        f"<style>{_STYLE}{_EXTRA}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def write_report(result: SimulationResult, doc: dict[str, Any], path: Path) -> None:
    """Write the report to ``path``."""
    path.write_text(render_report(result, doc), encoding="utf-8")
