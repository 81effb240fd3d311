"""Bundling a policy whose files still hold the bytes ``load_policy`` read:
the files are re-read and compared, not parsed again nor rebuilt into a
policy (a dry-run's workers receive their policies this way, before the first
batch). The bundle is the one the full check makes, byte for byte; a file
changed since loading still takes the full check and is caught."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from escalation import PolicyError, load_policy
from escalation.policy import Policy
from escalation.policy import bundle as bundles

from .conftest import ROOT, SHIPPED


@pytest.fixture
def rebuilt(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The policies ``to_bundle`` rebuilt from their files (the full check), by id."""
    calls: list[str] = []
    load = bundles._load

    def counted(data: bytes, **kwargs: Any) -> Policy:
        policy = load(data, **kwargs)
        calls.append(policy.id)
        return policy

    monkeypatch.setattr(bundles, "_load", counted)
    return calls


def _without_record(policy: Policy) -> Policy:
    """``policy`` as if loaded before files were recorded: only the full check can bundle it."""
    del policy.__dict__["_sources"]
    return policy


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_unchanged_files_bundle_without_a_rebuild_and_as_the_full_check_does(
    path: Path, rebuilt: list[str]
) -> None:
    quick = load_policy(path).to_bundle()
    assert rebuilt == []
    full = _without_record(load_policy(path)).to_bundle()
    assert len(rebuilt) == 1  # the reference really ran
    assert quick == full


def _local_copy(folder: Path) -> tuple[Path, Path]:
    """The CN policy including a local copy of its pack: (policy, pack)."""
    (folder / "packs").mkdir(parents=True)
    pack = folder / "packs" / "local.yaml"
    shutil.copy(ROOT / "rules" / "cn-collections.yaml", pack)
    text = (ROOT / "policies" / "consumer-credit-cn.yaml").read_text(encoding="utf-8")
    policy = folder / "policy.yaml"
    policy.write_text(text.replace("include: [pack:cn-collections]", "include: [packs/local.yaml]"), "utf-8")
    return policy, pack


def test_an_included_file_changed_since_loading_is_not_bundled(tmp_path: Path, rebuilt: list[str]) -> None:
    path, pack = _local_copy(tmp_path)
    policy = load_policy(path)
    pack.write_text(pack.read_text("utf-8").replace("max: 3", "max: 4", 1), "utf-8")
    with pytest.raises(PolicyError, match="changed since policy") as info:
        policy.to_bundle()
    assert info.value.code == "bundle-mismatch"
    assert len(rebuilt) == 1  # caught by the full check


def test_a_change_that_keeps_the_policy_bundles_the_new_text(tmp_path: Path, rebuilt: list[str]) -> None:
    """A comment added: the bytes differ, the full check runs and finds the same policy."""
    path, pack = _local_copy(tmp_path)
    policy = load_policy(path)
    pack.write_text("# a comment\n" + pack.read_text("utf-8"), "utf-8")
    assert b"# a comment" in policy.to_bundle()
    assert len(rebuilt) == 1


def test_a_deleted_file_is_reported(tmp_path: Path) -> None:
    path, pack = _local_copy(tmp_path)
    policy = load_policy(path)
    pack.unlink()
    with pytest.raises(PolicyError, match="cannot re-read") as info:
        policy.to_bundle()
    assert info.value.code == "file-not-found"


def test_packs_read_from_another_folder_take_the_full_check(tmp_path: Path, rebuilt: list[str]) -> None:
    """Loaded with ``packs=`` (a journal's stored packs): the bundle walks the shipped packs, so the
    recorded files are not the ones bundled and the policy is rebuilt to compare."""
    folder = tmp_path / "packs"
    folder.mkdir()
    shutil.copy(ROOT / "rules" / "cn-collections.yaml", folder / "cn-collections.yaml")
    policy = load_policy(ROOT / "policies" / "consumer-credit-cn.yaml", packs=folder)
    assert (
        policy.to_bundle()
        == _without_record(load_policy(ROOT / "policies" / "consumer-credit-cn.yaml")).to_bundle()
    )
    assert len(rebuilt) == 2
