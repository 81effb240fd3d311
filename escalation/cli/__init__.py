"""The ``escalation`` command line.

Exit codes: 0 ok; 1 usage or runtime error; 2 tests failed or decisions
differ where asked; 3 policy invalid. Policy errors print as
``path:line:col: code: message``, all of them, sorted."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from escalation._bundled import DEFAULT_ACCOUNT, DEFAULT_POLICY, bundled
from escalation._language import LOCALES
from escalation.cli.common import (
    EXIT_DIFFER,
    EXIT_ERROR,
    EXIT_POLICY,
    fail,
    parse_at,
    policy_errors,
)
from escalation.decision import ErrorRow, error_row
from escalation.engine import Engine
from escalation.errors import (
    BackendUnavailableError,
    EscalationError,
    PolicyError,
    PolicyIssue,
    UsageError,
)
from escalation.portfolio.io import InputTooLarge, SourceRow, read_accounts

if TYPE_CHECKING:
    from escalation.experiment import ExperimentEngine
    from escalation.journal import Journal

MAX_ACCOUNT_BYTES = 16 * 1024 * 1024

F = TypeVar("F", bound=Callable[..., Any])


def load_engine(
    policy: str | None, backend: str, journal: Journal | None = None, lang: str | None = None
) -> Engine:
    """The engine for ``--policy`` (the bundled CN policy by default), journaling
    every decision to ``journal`` when one is given, writing reasons in ``lang``."""
    path = Path(policy) if policy else bundled(DEFAULT_POLICY)
    try:
        return Engine.from_file(path, backend=backend, journal=journal, locale=lang)  # type: ignore[arg-type]
    except PolicyError as exc:
        policy_errors(exc)
    except BackendUnavailableError as exc:
        fail(str(exc))


def load_experiment_engine(
    experiment: str, policy: str | None, backend: str, journal: Journal | None, lang: str | None
) -> ExperimentEngine:
    """The engine serving ``--experiment`` (both arms' policies come from the file)."""
    from escalation.experiment import ExperimentEngine

    if policy is not None:
        fail("--experiment names the policies: drop --policy")
    try:
        return ExperimentEngine.from_file(experiment, backend=backend, journal=journal, locale=lang)  # type: ignore[arg-type]
    except PolicyError as exc:
        policy_errors(exc)
    except (BackendUnavailableError, UsageError) as exc:
        fail(str(exc))


def _accounts(source: str | None) -> tuple[str, Iterator[SourceRow]]:
    """The account rows of ``--account`` (``-`` = stdin; default: the bundled example)."""
    try:
        path = source if source is not None else bundled(DEFAULT_ACCOUNT)
        return read_accounts(path, limit=MAX_ACCOUNT_BYTES)
    except OSError as exc:
        fail(f"{source}: cannot read: {exc.strerror}")
    except InputTooLarge as exc:
        fail(f"{exc}; use `escalation dry-run` for portfolios")


def _error_line(name: str, row: int, error: ErrorRow | None) -> str:
    assert error is not None
    who = f"account `{error.account_id}`: " if error.account_id else ""
    return f"{name}:{row}: {who}{error.message}"


LANG_OPTION = click.option(
    "--lang",
    type=click.Choice(list(LOCALES)),
    default=None,
    help="language of reasons and text: en or zh-CN (default: the policy's locale, else en)",
)


def common_options(func: F) -> F:
    """--policy, --experiment, --account, --at, --backend, --lang."""
    func = LANG_OPTION(func)
    func = click.option(
        "--experiment", "-e", metavar="FILE",
        help="a champion/challenger experiment file: each account decided by its arm's policy",
    )(func)  # fmt: skip
    func = click.option(
        "--backend", type=click.Choice(["native", "rete"]), default="native", show_default=True,
        help="evaluator: native (default, source of truth) or rete (durable-rules)",
    )(func)  # fmt: skip
    func = click.option("--at", "at", metavar="ISO8601", help="evaluation instant (default: now)")(func)
    func = click.option(
        "--account",
        "-a",
        metavar="FILE|-",
        help="account JSON (object, array or JSON lines); default: bundled example",
    )(func)
    func = click.option(
        "--policy", "-p", metavar="POLICY", help="policy YAML; default: bundled consumer-credit-cn"
    )(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="escalation")
@click.option(
    "--log-format", type=click.Choice(["console", "json"]), default="console", show_default=True,
    help="format of log events on stderr",
)  # fmt: skip
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="warning",
    show_default=True, help="info: one event per decision (ids, action, guards; no personal data)",
)  # fmt: skip
def main(log_format: str, log_level: str) -> None:
    """Rule-based collections escalation: the next permitted action, with a reason."""
    from escalation._logging import configure_cli

    configure_cli(log_format, log_level)


@main.command()
@click.argument("policies", nargs=-1, required=True, type=click.Path(dir_okay=False))
def check(policies: tuple[str, ...]) -> None:
    """Validate and lint POLICIES (exit 3 if any is invalid)."""
    issues: list[PolicyIssue] = []
    for path in policies:
        try:
            engine = Engine.from_file(path)
        except PolicyError as exc:
            issues.extend(exc.issues)
            continue
        from escalation.policy._lint import lint

        policy = engine.policy
        for warning in lint(policy):
            click.echo(f"{path}: warning: {warning}", err=True)
        packs = ", ".join(policy.packs) or "no packs"
        click.echo(
            f"{path}: ok: {policy.id} {policy.version}, {len(policy.tiers)} tiers, "
            f"{len(policy.holds)} holds, {len(policy.guards)} guards ({packs}); {policy.fingerprint}"
        )
    if issues:
        for issue in sorted(issues):
            click.echo(str(issue), err=True)
        sys.exit(EXIT_POLICY)


def _decide_all(
    policy: str | None,
    account: str | None,
    at: str | None,
    backend: str,
    journal: str | None = None,
    lang: str | None = None,
    experiment: str | None = None,
) -> Iterator[Any]:
    from escalation.cli.audit import open_cli_journal

    sink = open_cli_journal(journal)
    engine: Engine | ExperimentEngine = (
        load_experiment_engine(experiment, policy, backend, sink, lang)
        if experiment is not None
        else load_engine(policy, backend, sink, lang)
    )
    now = parse_at(at)
    name, rows = _accounts(account)
    failed = False
    seen = 0
    for item in rows:
        seen += 1
        # a bad row is reported and the others are still decided
        if item.error is not None or item.record is None:
            failed = True
            click.echo(_error_line(name, item.row, item.error), err=True)
            continue
        try:
            yield engine.decide(item.record, now=now)
        except EscalationError as exc:
            failed = True
            click.echo(_error_line(name, item.row, error_row(exc, row=item.row)), err=True)
    if not seen:
        fail(f"{name}: no account records")
    if failed:
        sys.exit(EXIT_ERROR)


@main.command()
@common_options
@click.option("--pretty/--compact", default=True, show_default=True, help="indent the JSON")
@click.option(
    "--journal", "-j", metavar="JOURNAL", help="journal every decision (.jsonl, .sqlite, postgresql://)"
)
def decide(
    policy: str | None,
    account: str | None,
    at: str | None,
    backend: str,
    lang: str | None,
    experiment: str | None,
    pretty: bool,
    journal: str | None,
) -> None:
    """Decide the next permitted action; print the decision as JSON.

    With --experiment, each account is decided by its arm's policy and the
    decision carries `experiment: {id, arm}`."""
    for decision in _decide_all(policy, account, at, backend, journal, lang, experiment):
        click.echo(decision.to_json(indent=2 if pretty else None))


@main.command()
@common_options
@click.option("--record", "record_id", metavar="ID", help="explain a journaled decision (with --journal)")
@click.option("--journal", "-j", metavar="JOURNAL", help="the journal holding --record")
@click.pass_context
def explain(
    ctx: click.Context,
    policy: str | None,
    account: str | None,
    at: str | None,
    backend: str,
    lang: str | None,
    experiment: str | None,
    record_id: str | None,
    journal: str | None,
) -> None:
    """Explain the decision for a person: reason, blocks with citations, full trace.

    With --record ID --journal J, explain a decision from the audit journal
    (the same as `escalation audit show`)."""
    from escalation.explain import render_text

    if record_id is not None:
        if journal is None:
            fail("--record needs --journal")
        from escalation.cli.audit import show

        ctx.invoke(show, record_id=record_id, journal=journal, lang=lang)
        return
    for decision in _decide_all(policy, account, at, backend, lang=lang, experiment=experiment):
        click.echo(render_text(decision, lang or "en"))  # type: ignore[arg-type]


@main.command("test")
@click.argument("targets", nargs=-1, type=click.Path(exists=True))
@click.option("--backend", type=click.Choice(["native", "rete"]), default="native", show_default=True)
@click.option("--verbose", "-v", is_flag=True, help="list every case")
def test_command(targets: tuple[str, ...], backend: str, verbose: bool) -> None:
    """Run the policy tests (*_test.yaml) at TARGETS (files or directories).

    Fails (exit 2) on any mismatch, an empty suite, or a tier, hold, guard or
    status no case exercises."""
    from escalation.policytest import discover, run_suite

    files = [f for t in (targets or ("policies",)) for f in discover(t)]
    if not files:
        fail("no *_test.yaml files found (an empty suite fails)", EXIT_DIFFER)
    passed = failed = broken_suites = 0
    for path in files:
        try:
            result = run_suite(path, backend=backend)  # type: ignore[arg-type]
        except PolicyError as exc:
            policy_errors(exc)
        except BackendUnavailableError as exc:
            fail(str(exc))
        for case in result.cases:
            if case.passed:
                passed += 1
                if verbose:
                    click.echo(f"ok   {path} :: {case.name}")
                continue
            failed += 1
            click.echo(f"FAIL {path} :: {case.name}")
            for problem in case.problems:
                click.echo(f"     {problem}")
        for gap in result.uncovered:
            click.echo(f"UNCOVERED {path}: {gap}")
        if result.error:
            click.echo(f"FAIL {path}: {result.error}")
        if result.error or result.uncovered:
            broken_suites += 1
        click.echo(f"{path}: {sum(c.passed for c in result.cases)}/{len(result.cases)} cases passed")
    if broken_suites:
        click.echo(f"{broken_suites} suite(s) empty or with uncovered rules")
    click.echo(f"{passed} cases passed, {failed} failed")
    if failed or broken_suites:
        sys.exit(EXIT_DIFFER)


@main.command()
def schema() -> None:
    """Print the JSON Schema of the policy format."""
    from escalation.policy.jsonschema import policy_schema

    click.echo(json.dumps(policy_schema(), indent=2, sort_keys=True))


from escalation.cli.audit import audit  # noqa: E402 - registered last, beside the other groups
from escalation.cli.portfolio import dry_run_command, portfolio_group  # noqa: E402
from escalation.cli.simulate import simulate_group  # noqa: E402
from escalation.serve.cli import serve  # noqa: E402 - imports no web framework

main.add_command(audit)
main.add_command(dry_run_command)
main.add_command(portfolio_group)
main.add_command(serve)
main.add_command(simulate_group)

if __name__ == "__main__":  # pragma: no cover
    main()
