"""Policy bundles and pickling: a policy travels as one self-contained blob,
its fingerprint checked on load; engines pickle by carrying it."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from escalation import Engine, ListSink, PolicyError, UsageError, load_policy, load_policy_bundle
from escalation.policy.bundle import BUNDLE_FORMAT
from escalation.portfolio.generate import PROFILES, generate

from .conftest import NOW, ROOT, SHIPPED

_PROFILE_OF = {Path(p.policy).stem: name for name, p in PROFILES.items()}


def _records(policy: Path, count: int) -> list[dict[str, Any]]:
    return list(generate(count, seed=7, profile=_PROFILE_OF[policy.stem], at=NOW))


def _outputs(engine: Engine, records: list[dict[str, Any]]) -> list[Any]:
    return [d.model_dump(mode="json") for d in engine.decide_many(records, now=NOW)]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_policy_pickles_and_decides_identically(path: Path) -> None:
    engine = Engine.from_file(path)
    clone = pickle.loads(pickle.dumps(engine))
    assert clone.policy.fingerprint == engine.policy.fingerprint
    assert clone.policy.canonical == engine.policy.canonical
    assert (clone.backend, clone.locale) == (engine.backend, engine.locale)
    records = _records(path, 200)
    records.append({"id": "BAD-1", "balance": "not money"})  # an error row too
    assert _outputs(clone, records) == _outputs(engine, records)


def test_rete_engine_pickles_and_is_recreated() -> None:
    pytest.importorskip("durable")
    engine = Engine.from_file(SHIPPED[0], backend="rete", locale="zh-CN")
    clone = pickle.loads(pickle.dumps(engine))
    assert (clone.backend, clone.locale) == ("rete", "zh-CN")
    records = _records(SHIPPED[0], 60)
    assert _outputs(clone, records) == _outputs(engine, records)


def test_engine_crosses_a_fresh_process() -> None:
    """The bound method carries the pickled engine (its bundle) to a spawned
    process, which rebuilds it and decides (no test-module code crosses: the
    child need not import the tests). A broken worker fails the future, never hangs."""
    engine = Engine.from_file(SHIPPED[0])
    record = _records(SHIPPED[0], 1)[0]
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        out = pool.submit(engine.decide, record, now=NOW).result(timeout=300)
    assert out.model_dump_json() == engine.decide(record, now=NOW).model_dump_json()


def test_bundle_is_self_contained_and_carries_relative_includes(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    (folder / "packs").mkdir(parents=True)
    shutil.copy(ROOT / "rules" / "cn-collections.yaml", folder / "packs" / "local.yaml")
    text = (ROOT / "policies" / "consumer-credit-cn.yaml").read_text(encoding="utf-8")
    text = text.replace("include: [pack:cn-collections]", "include: [packs/local.yaml]")
    (folder / "policy.yaml").write_text(text, encoding="utf-8")
    policy = load_policy(folder / "policy.yaml")
    blob = policy.to_bundle()
    document = json.loads(blob)
    assert document["format"] == BUNDLE_FORMAT
    assert sorted(document["files"]) == ["packs/local.yaml", "policy.yaml"]
    shutil.rmtree(folder)  # nothing is read from the source folder any more
    again = load_policy_bundle(blob)
    assert again.fingerprint == policy.fingerprint
    assert again.packs == policy.packs
    assert again.to_bundle() == blob  # re-bundling a loaded bundle is stable


def test_shipped_packs_travel_by_text() -> None:
    document = json.loads(load_policy(SHIPPED[2]).to_bundle())
    assert set(document["files"]) == {"uk-consumer-loan.yaml", "_packs/uk-conc.yaml"}
    assert document["files"]["_packs/uk-conc.yaml"] == (ROOT / "rules" / "uk-conc.yaml").read_text("utf-8")


def _tamper(blob: bytes, edit: Any, *, redigest: bool) -> bytes:
    from escalation.policy.bundle import _digest

    document = json.loads(blob)
    edit(document)
    if redigest:
        document["digest"] = _digest(document["files"])
    return json.dumps(document).encode()


def _raise_threshold(document: dict[str, Any]) -> None:
    root = document["files"][document["root"]]
    changed = root.replace("days_overdue >= 1", "days_overdue >= 2", 1)
    assert changed != root
    document["files"][document["root"]] = changed


def test_tampered_file_text_is_caught_by_the_digest() -> None:
    blob = load_policy(SHIPPED[0]).to_bundle()
    with pytest.raises(PolicyError, match="bundle-tampered: the bundle's files do not match its digest"):
        load_policy_bundle(_tamper(blob, _raise_threshold, redigest=False))


def test_tampered_policy_with_a_fresh_digest_is_caught_by_the_fingerprint() -> None:
    blob = load_policy(SHIPPED[0]).to_bundle()
    with pytest.raises(PolicyError, match="bundle-tampered: the bundle says fingerprint") as info:
        load_policy_bundle(_tamper(blob, _raise_threshold, redigest=True))
    assert info.value.code == "bundle-tampered"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "not a policy bundle"),
        (json.dumps({"format": BUNDLE_FORMAT}).encode(), "needs `fingerprint`"),
    ],
)
def test_not_a_bundle(data: bytes, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy_bundle(data)


def test_a_path_escaping_the_bundle_is_refused() -> None:
    blob = load_policy(SHIPPED[0]).to_bundle()

    def escape(document: dict[str, Any]) -> None:
        document["files"]["../../outside.yaml"] = "x: 1\n"

    with pytest.raises(PolicyError, match="unsafe path"):
        load_policy_bundle(_tamper(blob, escape, redigest=True))


def test_files_changed_since_loading_are_not_bundled(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    shutil.copy(SHIPPED[0], path)
    policy = load_policy(path)
    path.write_text(path.read_text("utf-8").replace("days_overdue >= 1", "days_overdue >= 2", 1), "utf-8")
    with pytest.raises(PolicyError, match="changed since policy"):
        policy.to_bundle()


def test_an_engine_with_a_sink_does_not_pickle() -> None:
    engine = Engine.from_file(SHIPPED[0], sink=ListSink())
    with pytest.raises(UsageError, match="cannot be pickled"):
        pickle.dumps(engine)


def test_a_pickled_policy_is_the_same_policy() -> None:
    policy = load_policy(SHIPPED[1])
    again = pickle.loads(pickle.dumps(policy))
    assert (again.fingerprint, again.id, again.version, again.flags) == (
        policy.fingerprint,
        policy.id,
        policy.version,
        policy.flags,
    )
    assert Path(again.path).is_file()  # readable for the life of the process (workers reload by path)
