"""The policies a server decides with, and their reload: a new set is loaded
and validated completely before it replaces the old one, so an invalid file
never stops the server (fail closed: the old policies keep serving)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from escalation import Engine, Journal, Policy, PolicyError, PolicyIssue, load_policy

__all__ = ["PolicySet", "Served", "UnknownPolicyError"]


class UnknownPolicyError(LookupError):
    """A request named a policy the server does not serve (or named none while
    several are served)."""


@dataclass(frozen=True)
class Served:
    """One served policy: the journaling engine for ``decide`` and a
    non-journaling one for ``explain`` (an explanation is not a decision to act)."""

    policy: Policy
    engine: Engine
    explainer: Engine


class PolicySet:
    """The served policies by id. Reads take the current mapping without a
    lock (it is replaced, never mutated), so a reload never blocks decisions
    and a request sees one consistent set."""

    def __init__(self, paths: tuple[str, ...], journal: Journal | None) -> None:
        self._paths = paths
        self._journal = journal
        self._reload_lock = threading.Lock()
        self._by_id: dict[str, Served] = self._load()

    def _load(self) -> dict[str, Served]:
        by_id: dict[str, Served] = {}
        issues: list[PolicyIssue] = []
        for path in self._paths:
            try:
                policy = load_policy(path)
            except PolicyError as exc:
                issues.extend(exc.issues)
                continue
            if policy.id in by_id:
                issues.append(
                    PolicyIssue(
                        str(path), 1, 1, "duplicate-policy", f"policy id `{policy.id}` is served twice"
                    )
                )
                continue
            by_id[policy.id] = Served(
                policy, Engine(policy, journal=self._journal), Engine(policy, journal=None)
            )
        if issues:
            raise PolicyError(issues)
        return by_id

    @property
    def paths(self) -> tuple[str, ...]:
        """The policy files, as given."""
        return self._paths

    def all(self) -> list[Served]:
        """Every served policy, by id."""
        current = self._by_id
        return [current[key] for key in sorted(current)]

    def get(self, policy_id: str | None) -> Served:
        """The policy ``policy_id``, or the only one when ``None``."""
        current = self._by_id
        if policy_id is None:
            if len(current) == 1:
                return next(iter(current.values()))
            raise UnknownPolicyError(
                f"this server serves {len(current)} policies ({', '.join(sorted(current))}): name one"
            )
        try:
            return current[policy_id]
        except KeyError:
            raise UnknownPolicyError(
                f"policy `{policy_id}` is not served here (served: {', '.join(sorted(current))})"
            ) from None

    def validate(self) -> dict[str, Served]:
        """Load every policy file again without switching (raises
        :class:`~escalation.PolicyError` listing every issue)."""
        return self._load()

    def reload(self) -> bool:
        """Load every policy file again and switch when all are valid;
        whether any fingerprint changed. Raises :class:`~escalation.PolicyError`
        (and keeps the current policies) when any file is invalid."""
        with self._reload_lock:
            fresh = self._load()
            before = {key: s.policy.fingerprint for key, s in self._by_id.items()}
            after = {key: s.policy.fingerprint for key, s in fresh.items()}
            if before == after:
                return False  # keep the engines already warmed up
            self._by_id = fresh
            return True


def describe_paths(paths: tuple[str, ...]) -> str:
    """The policy file names for a log line (names only, no directories)."""
    return ", ".join(Path(p).name for p in paths)
