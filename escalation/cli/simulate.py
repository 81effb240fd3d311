"""``escalation simulate``: advance a portfolio day by day under a policy and
a baseline (or a champion/challenger experiment) and report the difference."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from escalation.cli.common import EXIT_ERROR, fail, needs_extra, parse_at, policy_errors
from escalation.errors import EscalationError, PolicyError, UsageError

__all__ = ["simulate_group"]

_SHOWN = (
    ("actions", "actions"),
    ("cost", "cost"),
    ("collected", "collected"),
    ("net", "collected − cost"),
    ("cured", "cured"),
    ("rolled", "rolled"),
    ("written_off", "written off"),
    ("promises_made", "promises made"),
    ("disputes", "disputes"),
    ("active", "in arrears at the end"),
)


def _print(doc: dict[str, Any]) -> None:
    sim = doc["simulation"]
    click.echo(
        f"simulated {sim['accounts']:,} accounts for {sim['days']} days from {sim['start']} "
        f"({sim['runs']} run(s), seed {sim['seed']}, model {sim['model']['id']}, {sim['backend']}); "
        f"{sim['error_rows']:,} error rows"
    )
    labels = list(doc["totals"])
    head = f"{'':<24}" + "".join(f"{label:>18}" for label in labels)
    if doc["difference"]:
        head += f"{'difference':>18}  95% interval"
    click.echo(head)
    for metric, title in _SHOWN:
        line = f"{title:<24}" + "".join(f"{doc['totals'][label][metric]!s:>18}" for label in labels)
        if doc["difference"]:
            d = doc["difference"][metric]
            line += f"{d['mean']!s:>18}"
            if d["low"] is not None:
                line += f"  [{d['low']}, {d['high']}]"
        click.echo(line)
    for label, arms in doc["arms"].items():
        for arm, row in arms.items():
            click.echo(
                f"arm {arm} under {label}: {row['accounts']:,.0f} accounts, collected {row['collected']}, "
                f"cost {row['cost']}"
            )


@click.group("simulate", invoke_without_command=True)
@click.option(
    "--policy", "-p", metavar="POLICY", help="the candidate policy (the champion with --challenger)"
)
@click.option("--baseline", "-b", metavar="POLICY", help="the current policy, simulated beside it")
@click.option("--challenger", metavar="POLICY:SHARE", help="champion/challenger: e.g. `new.yaml:20%`")
@click.option("--experiment", metavar="FILE", help="an experiment file (champion, challenger, share, salt)")
@click.option("--salt", default="escalation", show_default=True, help="the arm assignment's salt")
@click.option("--portfolio", metavar="FILE", help="accounts: .jsonl, .csv, .parquet or a typed folder")
@click.option(
    "--model", "-m", metavar="FILE", help="response model (default: the bundled one for the currency)"
)
@click.option("--at", "at", metavar="ISO8601", help="the first day's batch instant (default: now)")
@click.option("--days", "-d", default=90, show_default=True, type=click.IntRange(1, 3650))
@click.option("--runs", "-k", default=1, show_default=True, type=click.IntRange(1, 1000), help="seeds")
@click.option("--seed", "-s", default=1, show_default=True, type=int)
@click.option("--out", "-o", metavar="DIR", help="write summary.json, Parquet tables and report.html here")
@click.option(
    "--backend", type=click.Choice(["auto", "columnar", "native"]), default="auto", show_default=True
)
@click.option("--workers", "-w", default=1, show_default=True, type=click.IntRange(1, 64), help="processes")
@click.pass_context
def simulate_group(
    ctx: click.Context,
    policy: str | None,
    baseline: str | None,
    challenger: str | None,
    experiment: str | None,
    salt: str,
    portfolio: str | None,
    model: str | None,
    at: str | None,
    days: int,
    runs: int,
    seed: int,
    out: str | None,
    backend: str,
    workers: int,
) -> None:
    """Simulate POLICY (and --baseline) on a portfolio for --days days.

    Each day every account in arrears is decided at the batch time, customers
    answer as the response model draws (the same draws for both policies),
    payments are applied, accounts cure, roll or are written off. Exit 0 ok;
    1 on usage errors or when rows could not be simulated (errors.jsonl);
    3 when a policy or the response model is invalid."""
    if ctx.invoked_subcommand is not None:
        return
    needs_extra("portfolio", "escalation simulate")
    from escalation.simulate.experiment import load_experiment, parse_share
    from escalation.simulate.run import Arms, simulate

    arms = None
    try:
        if experiment is not None:
            if policy or baseline or challenger:
                raise UsageError(
                    "--experiment names the policies: drop --policy, --baseline and --challenger"
                )
            spec = load_experiment(experiment)
            champion, candidate = spec.resolve(Path(experiment).parent)
            policy, baseline = str(candidate), str(champion)
            arms = Arms(spec.challenger.share, spec.salt)
        elif challenger is not None:
            if baseline is not None or policy is None:
                raise UsageError("--challenger needs --policy (the champion) and no --baseline")
            path, _, share = challenger.rpartition(":")
            if not path:
                raise UsageError("--challenger takes POLICY:SHARE, e.g. `new.yaml:20%`")
            policy, baseline = path, policy
            arms = Arms(parse_share(share), salt)
        if policy is None or portfolio is None:
            raise UsageError("give --policy (or --experiment) and --portfolio")
        moment = parse_at(at)
        result = simulate(
            policy,
            portfolio,
            at=moment,
            days=days,
            baseline=baseline,
            model=model,
            runs=runs,
            seed=seed,
            out=out,
            backend=backend,  # type: ignore[arg-type]
            arms=arms,
            workers=workers,
        )
    except PolicyError as exc:
        policy_errors(exc)
    except (OSError, ValueError, EscalationError) as exc:
        fail(str(exc))
    from escalation.simulate._output import summary_json

    _print(summary_json(result))
    if out is not None:
        click.echo(f"wrote {', '.join(sorted(Path(f).name for f in result.files.values()))} to {out}")
    if result.errors:
        sys.exit(EXIT_ERROR)


@simulate_group.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the response-model format."""
    from escalation.simulate.model import response_model_schema

    click.echo(json.dumps(response_model_schema(), indent=2, sort_keys=True))


@simulate_group.command("calibrate")
@click.option(
    "--policy", "-p", "policy", required=True, metavar="POLICY", help="the policy the history followed"
)
@click.option("--portfolio", required=True, metavar="FILE", help="records with their past events")
@click.option(
    "--model", "-m", metavar="FILE", help="the model to fit (default: the bundled one for the currency)"
)
@click.option("--min-events", default=30, show_default=True, type=click.IntRange(1), help="per rule")
@click.option("--output", "-o", required=True, metavar="FILE", help="the fitted model (YAML)")
def calibrate_command(policy: str, portfolio: str, model: str | None, min_events: int, output: str) -> None:
    """Fit a response model's outcome, promise, payment and dispute rates from
    a portfolio's past events; costs and book parameters stay the model's."""
    needs_extra("portfolio", "escalation simulate calibrate")
    from escalation.policy import load_policy
    from escalation.simulate.calibrate import calibrate, dump_model
    from escalation.simulate.run import _model

    try:
        loaded = load_policy(policy)
        base, _ = _model(model, loaded)
        fit = calibrate(loaded, portfolio, base, min_events=min_events)
        Path(output).write_text(dump_model(fit.model), encoding="utf-8")
    except PolicyError as exc:
        policy_errors(exc)
    except (OSError, ValueError, EscalationError) as exc:
        fail(str(exc))
    fitted = ", ".join(f"{k} ({n})" for k, n in fit.events.items() if n >= min_events) or "none"
    click.echo(f"read {fit.records:,} records ({fit.skipped:,} skipped); fitted rules (actions): {fitted}")
    click.echo(f"wrote {output}")
