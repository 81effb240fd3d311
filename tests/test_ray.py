"""escalation.ray on a local 2-CPU Ray: per-account equality with the local
dry-run on a corrupted 5,000-account book, map_batches as tasks.

Marked ``ray``: the default run deselects them; ``pytest -m ray`` runs them
(CI does), and they skip when Ray is missing."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import escalation  # noqa: E402
from escalation import UsageError  # noqa: E402

from ._scaleout import (  # noqa: E402
    AT,
    CN_POLICY,
    candidate_policy,
    comparable_errors,
    local_results,
    split_rows,
    write_portfolio,
)

ACCOUNTS = 5_000


@pytest.fixture(scope="module")
def cluster() -> Any:
    from escalation.ray import local_cluster

    local_cluster(2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("ray-book")
    path = folder / "book.jsonl"
    write_portfolio(path, ACCOUNTS, every=50, seed=23)
    candidate = candidate_policy(folder)
    result = escalation.dry_run(candidate, path, at=AT, baseline=CN_POLICY, out=folder / "local")
    lines = path.read_text(encoding="utf-8").splitlines()
    numbered = folder / "lines.parquet"
    pq.write_table(
        pa.table({"row": range(1, len(lines) + 1), "record": lines}), numbered, row_group_size=1000
    )
    return {
        "numbered": numbered,
        "candidate": candidate,
        "result": result,
        "local": local_results(folder / "local"),
    }


def test_dry_run_equals_the_local_dry_run_per_account(cluster: Any, book: dict[str, Any]) -> None:
    from escalation.ray import dry_run

    ds = cluster.data.read_parquet(str(book["numbered"]), override_num_blocks=4)
    result = dry_run(ds, book["candidate"], baseline=CN_POLICY, at=AT, json_column="record", batch_size=1000)
    local = book["result"]
    assert result.counts() == {"accounts": ACCOUNTS, "decided": local.decided, "errors": local.errors}
    assert local.errors >= 90
    rows = result.outcomes.take_all()
    decisions, baseline, errors = split_rows(rows, baseline=True)
    local_decisions, local_baseline, local_errors = book["local"]
    assert decisions == local_decisions
    assert baseline == local_baseline
    assert comparable_errors(errors) == comparable_errors(local_errors)
    assert comparable_errors({r["row"]: r for r in result.errors.take_all()}) == comparable_errors(
        local_errors
    )
    assert {r["account_id"]: r for r in result.decisions.take_all()} == local_decisions
    cells = {
        (c["baseline"], c["candidate"]): (c["accounts"], c["balance"]) for c in result.transitions.take_all()
    }
    assert cells == {k: (t.accounts, t.balance) for k, t in local.transitions.items()}
    assert any(old != new for old, new in cells)


def test_float_money_is_refused_before_any_task(cluster: Any) -> None:
    from escalation.ray import decide

    ds = cluster.data.from_arrow(pa.table({"id": ["A-1"], "balance": [10.5]}))
    with pytest.raises(UsageError, match=r"column `balance` is double"):
        decide(ds, CN_POLICY, at=AT)
