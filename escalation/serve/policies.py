"""The policies and experiments a server decides with, and their reload: a
new set is loaded and validated completely before it replaces the old one, so
an invalid file never stops the server (fail closed: the old set keeps
serving)."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from escalation import Engine, Journal, Policy, PolicyError, PolicyIssue, UsageError, load_policy
from escalation.experiment import Experiment, ExperimentEngine, load_experiment

__all__ = [
    "PolicySet",
    "Served",
    "ServedExperiment",
    "Target",
    "UnknownPolicyError",
    "experiment_fingerprint",
]


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

    @property
    def id(self) -> str:
        """The id requests name it by (the policy's id)."""
        return self.policy.id

    @property
    def fingerprint(self) -> str:
        """What a request's ``fingerprint`` pins (the policy's fingerprint)."""
        return self.policy.fingerprint


@dataclass(frozen=True)
class ServedExperiment:
    """One served champion/challenger experiment: its journaling engine for
    ``decide`` and a non-journaling one for ``explain``, and both arms' policies."""

    experiment: Experiment
    champion: Policy
    challenger: Policy
    engine: ExperimentEngine
    explainer: ExperimentEngine
    fingerprint: str
    """What a request's ``fingerprint`` pins (:func:`experiment_fingerprint`)."""

    @property
    def id(self) -> str:
        """The id requests name it by (the experiment's id)."""
        return self.experiment.id


Target = Served | ServedExperiment


def experiment_fingerprint(experiment: Experiment, champion: Policy, challenger: Policy) -> str:
    """``sha256:`` of everything that decides an experiment's decisions: its id,
    salt and challenger share and both arms' policy fingerprints, as JSON with
    sorted keys and no spaces (file paths and the description are left out)."""
    canonical = {
        "id": experiment.id,
        "salt": experiment.salt,
        "share": repr(experiment.challenger.share),
        "champion": champion.fingerprint,
        "challenger": challenger.fingerprint,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class PolicySet:
    """The served policies and experiments by id. Reads take the current
    mapping without a lock (it is replaced, never mutated), so a reload never
    blocks decisions and a request sees one consistent set."""

    def __init__(
        self, paths: tuple[str, ...], journal: Journal | None, experiments: tuple[str, ...] = ()
    ) -> None:
        self._paths = paths
        self._experiment_paths = experiments
        self._journal = journal
        self._reload_lock = threading.Lock()
        self._by_id: dict[str, Target] = self._load()

    def _load(self) -> dict[str, Target]:
        by_id: dict[str, Target] = {}
        issues: list[PolicyIssue] = []

        def add(path: str, target: Target) -> None:
            if target.id in by_id:
                clash = _clash(target, by_id[target.id])
                issues.append(PolicyIssue(str(path), 1, 1, "duplicate-policy", clash))
            else:
                by_id[target.id] = target

        for path in self._paths:
            try:
                policy = load_policy(path)
            except PolicyError as exc:
                issues.extend(exc.issues)
                continue
            add(path, Served(policy, Engine(policy, journal=self._journal), Engine(policy, journal=None)))
        for path in self._experiment_paths:
            try:
                add(path, self._load_experiment(path))
            except PolicyError as exc:
                issues.extend(exc.issues)
        if issues:
            raise PolicyError(issues)
        return by_id

    def _load_experiment(self, path: str) -> ServedExperiment:
        spec = load_experiment(path)
        champion_path, challenger_path = spec.resolve(Path(path).parent)
        found: list[PolicyIssue] = []
        arms: list[Policy] = []
        for arm_path in (champion_path, challenger_path):
            try:
                arms.append(load_policy(arm_path))
            except PolicyError as exc:
                found.extend(exc.issues)
        if found:
            raise PolicyError(found)
        champion, challenger = arms
        try:
            engine = ExperimentEngine(spec, champion, challenger, journal=self._journal)
        except UsageError as exc:  # the arms cannot serve one portfolio (currencies differ)
            raise PolicyError([PolicyIssue(str(path), 1, 1, "experiment-arms", str(exc))]) from None
        explainer = ExperimentEngine(spec, champion, challenger)
        fingerprint = experiment_fingerprint(spec, champion, challenger)
        return ServedExperiment(spec, champion, challenger, engine, explainer, fingerprint)

    @property
    def paths(self) -> tuple[str, ...]:
        """The policy files, as given."""
        return self._paths

    @property
    def experiment_paths(self) -> tuple[str, ...]:
        """The experiment files, as given."""
        return self._experiment_paths

    def all(self) -> list[Served]:
        """Every served policy, by id."""
        current = self._by_id
        return [t for key in sorted(current) if isinstance(t := current[key], Served)]

    def experiments(self) -> list[ServedExperiment]:
        """Every served experiment, by id."""
        current = self._by_id
        return [t for key in sorted(current) if isinstance(t := current[key], ServedExperiment)]

    def get(self, policy_id: str | None) -> Target:
        """The policy or experiment ``policy_id``, or the only one served when ``None``."""
        current = self._by_id
        if policy_id is None:
            if len(current) == 1:
                return next(iter(current.values()))
            raise UnknownPolicyError(
                f"this server serves {len(current)} policies and experiments "
                f"({', '.join(sorted(current))}): name one"
            )
        try:
            return current[policy_id]
        except KeyError:
            raise UnknownPolicyError(
                f"policy `{policy_id}` is not served here (served: {', '.join(sorted(current))})"
            ) from None

    def validate(self) -> dict[str, Target]:
        """Load every file again without switching (raises
        :class:`~escalation.PolicyError` listing every issue)."""
        return self._load()

    def reload(self) -> bool:
        """Load every policy and experiment file (and the policies the
        experiments name) again and switch when all are valid; whether any
        fingerprint (or experiment description) changed. Raises :class:`~escalation.PolicyError` (and keeps
        the current set) when any file is invalid."""
        with self._reload_lock:
            fresh = self._load()
            if _state(self._by_id) == _state(fresh):
                return False  # keep the engines already warmed up
            self._by_id = fresh
            return True


def _state(by_id: dict[str, Target]) -> dict[str, tuple[str, str | None]]:
    """What a reload compares: each fingerprint (and an experiment's description,
    which its fingerprint leaves out but the listing shows)."""
    return {
        key: (t.fingerprint, t.experiment.description if isinstance(t, ServedExperiment) else None)
        for key, t in by_id.items()
    }


def _clash(new: Target, old: Target) -> str:
    def kind(target: Target) -> str:
        return "policy" if isinstance(target, Served) else "experiment"

    if kind(new) == kind(old):
        return f"{kind(new)} id `{new.id}` is served twice"
    return f"{kind(new)} id `{new.id}` is also the id of a served {kind(old)}; requests name one by id"


def describe_paths(paths: tuple[str, ...]) -> str:
    """The policy file names for a log line (names only, no directories)."""
    return ", ".join(Path(p).name for p in paths)
