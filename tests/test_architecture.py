"""The package's shape: one home per extension point, no import circles, a
light ``import escalation``, small modules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from escalation import load_policy
from escalation._bundled import SHIPPED_POLICIES
from escalation._facts import FACT_FAMILIES, FACTS, derive
from escalation.guards import KINDS, GuardBase
from escalation.record import parse_account

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_SUITES = [ROOT / "policies" / f"{name}_test.yaml" for name in SHIPPED_POLICIES]
PACKAGE = ROOT / "escalation"
HEAVY = ("sqlite3", "fcntl", "pyarrow", "plotly", "psycopg", "durable", "structlog")
MAX_MODULE_LINES = 400
# A record with every optional field set, so every declared fact can be derived.
FULL_RECORD = {
    "id": "FULL-1",
    "currency": "USD",
    "amount_overdue": "120.00",
    "balance": "900.00",
    "overdue_since": "2026-09-01",
    "timezone": "America/New_York",
    "jurisdiction": "US-NY",
    "product": "card",
    "segment": "prime",
    "flags": ["hardship"],
    "opt_out": ["email"],
    "promise_to_pay": {"amount": "50.00", "due_date": "2026-11-30", "made_at": "2026-11-20T15:00:00+00:00"},
    "payment_plan": {"status": "active", "next_due_date": "2026-12-01"},
    "validation_notice_sent_at": "2026-09-10T12:00:00+00:00",
    "last_payment_at": "2026-08-01",
    "actor_type": "third_party_collector",
    "principal": "800.00",
    "breathing_space": {"type": "standard", "start": "2026-11-01"},
    "history": [
        {"at": "2026-11-20T15:00:00+00:00", "action": None, "channel": "phone", "outcome": "conversation",
         "direction": "outbound", "consent_until": "2026-11-25T00:00:00+00:00"},
        {"at": "2026-11-21T15:00:00+00:00", "action": None, "channel": "phone", "outcome": "no_answer",
         "direction": "outbound"},
    ],
}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports when it is loaded: module-level
    imports only (not those under ``if TYPE_CHECKING:`` or inside functions)."""
    tree = ast.parse(path.read_text())
    own = _module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, base]).strip(".")
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")  # a submodule
                elif base in modules:
                    found.add(base)
    found.discard(own)
    return found


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _runtime_imports(path, set(paths)) for name, path in paths.items()}


class TestLayout:
    def test_import_escalation_is_light(self) -> None:
        """`import escalation` loads none of the heavy or POSIX-only modules."""
        code = f"import escalation, sys; print([m for m in {HEAVY!r} if m in sys.modules])"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert "[]" == out.stdout.strip()

    def test_the_command_line_imports_without_the_portfolio_extra(self) -> None:
        """The core install (no numpy, no pyarrow) runs the CLI: its modules
        and the dry-run's import none of them until a columnar run needs them."""
        code = (
            "import escalation.cli, escalation.portfolio.dryrun, sys; "
            "print([m for m in ('numpy', 'pyarrow', 'plotly') if m in sys.modules])"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert "[]" == out.stdout.strip()

    def test_lazy_public_names_still_import(self) -> None:
        """The public names loaded on first use are real objects under `escalation`."""
        import escalation

        for name in ("JsonlJournal", "SqliteJournal", "dry_run", "compare"):
            assert "escalation" == getattr(escalation, name).__module__

    def test_modules_are_small(self) -> None:
        """No module of the package is over ~400 lines."""
        sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
        assert {} == {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES}

    def test_no_import_circles(self) -> None:
        """The module-level import graph of the package has no cycle."""
        graph = _graph()
        assert graph["escalation.engine"]  # the walk sees imports at all
        cycles: list[list[str]] = []
        state: dict[str, int] = {}

        def visit(node: str, stack: list[str]) -> None:
            state[node] = 1
            for nxt in sorted(graph[node]):
                if state.get(nxt) == 1:
                    cycles.append([*stack[stack.index(nxt) :], nxt])
                elif nxt not in state:
                    visit(nxt, [*stack, nxt])
            state[node] = 2

        for name in sorted(graph):
            if name not in state:
                visit(name, [name])
        assert [] == cycles

    def test_engine_never_imports_storage(self) -> None:
        """Nothing the engine imports reaches the journal or the portfolio readers
        (OPA's evaluator never imports storage): decisions leave through a sink."""
        graph = _graph()
        seen, todo = set(), ["escalation.engine"]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        assert [] == sorted(m for m in seen if m.startswith(("escalation.journal", "escalation.portfolio")))


class TestGuardKinds:
    def test_every_kind_is_complete(self) -> None:
        """Each registered kind has a model named by its `kind` literal, a checker,
        existing filter/condition/date fields, and a row in the policy-language docs."""
        docs = (ROOT / "docs" / "policy-language.md").read_text()
        for name, kind in KINDS.items():
            assert issubclass(kind.model, GuardBase)
            assert (name,) == typing.get_args(kind.model.model_fields["kind"].annotation)
            assert callable(kind.check)
            for field in (*kind.filters, *kind.conditions, *kind.record_dates):
                assert field in kind.model.model_fields, (name, field)
            assert f"| `{kind.doc}` |" in docs, name

    def test_kinds_are_the_schema_union(self) -> None:
        """The policy JSON Schema offers exactly the registered kinds."""
        schema = json.loads((PACKAGE / "schemas" / "policy.schema.json").read_text())
        kinds = {
            d["properties"]["kind"]["const"]
            for name, d in schema["$defs"].items()
            # offers have kinds too, and a tier's `kind` is an enum, not one constant
            if "const" in d.get("properties", {}).get("kind", {}) and not name.endswith("Offer")
        }
        assert set(KINDS) == kinds


class TestFacts:
    @pytest.fixture(scope="class")
    @classmethod
    def derived(cls) -> set[str]:
        """Every fact name derived for some case of every shipped suite, and for
        one record that sets every optional field."""
        import datetime as dt

        from escalation.policy._yaml import load_yaml
        from escalation.policytest import Suite

        names: set[str] = set()
        for suite_path in SHIPPED_SUITES:
            suite = Suite.model_validate(load_yaml(suite_path.read_bytes(), str(suite_path)).data)
            policy = load_policy(suite_path.parent / (suite.policy or suite_path.name.replace("_test", "")))
            for case in suite.cases:
                try:
                    account = parse_account({**suite.defaults, **case.account})
                except ValueError:
                    continue  # the suite's invalid-record cases
                now = dt.datetime.fromisoformat(case.now)
                names.update(derive(account, now, policy).values)
        us = load_policy(ROOT / "policies" / "us-card-collector.yaml")
        now = dt.datetime(2026, 11, 23, 15, tzinfo=dt.UTC)
        full = parse_account(FULL_RECORD)
        names.update(derive(full, now, us).values)
        return names

    def test_every_declared_fact_is_derived(self, derived: set[str]) -> None:
        """Each fact in the FACTS table is computed by derive() for some shipped case."""
        assert [] == sorted(set(FACTS) - derived)

    def test_every_derived_fact_is_declared(self, derived: set[str]) -> None:
        """derive() computes nothing the FACTS table (or its families) does not declare."""
        families = tuple(f"{family}." for family in FACT_FAMILIES)
        assert [] == sorted(n for n in derived if n not in FACTS and not n.startswith(families))
