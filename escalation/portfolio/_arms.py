"""Champion/challenger dry-runs: each account's arm, and what a dry-run
tallies by arm.

Under an experiment the dry-run decides every account under the champion
(the baseline) and the challenger accounts also under the challenger; the
candidate decision of an account is its arm's. Both paths (the reference
engine's loop and the columnar fold) add into one :class:`ArmTallies`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from escalation.decision import PolicyInfo
from escalation.experiment import Arm, Experiment, arm_of
from escalation.policy import Policy
from escalation.portfolio.results import ArmSummary, SummaryBuilder, Tally, label

__all__ = ["ARMS", "ArmTallies", "experiment_info"]

ARMS: tuple[Arm, Arm] = ("champion", "challenger")


def _info(policy: Policy) -> PolicyInfo:
    return PolicyInfo(id=policy.id, version=policy.version, fingerprint=policy.fingerprint)


def experiment_info(experiment: Experiment, champion: Policy, challenger: Policy) -> PolicyInfo:
    """What the candidate summary names under an experiment: the experiment's
    id, version ``experiment``, and as fingerprint a hash of the split (salt,
    share) and both policies' fingerprints."""
    import hashlib

    text = "\n".join(
        (experiment.salt, repr(experiment.challenger.share), champion.fingerprint, challenger.fingerprint)
    )
    return PolicyInfo(
        id=experiment.id,
        version="experiment",
        fingerprint="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
    )


class ArmTallies:
    """Per arm: the accounts, the arm's decisions (a summary), the transitions
    from the champion's decision and the changed accounts."""

    def __init__(self, experiment: Experiment, champion: Policy, challenger: Policy) -> None:
        self.experiment = experiment
        self.champion = champion
        self.builders = {
            "champion": SummaryBuilder(_info(champion)),
            "challenger": SummaryBuilder(_info(challenger)),
        }
        self.accounts: dict[str, list[Any]] = {arm: [0, Decimal(0)] for arm in ARMS}
        self.transitions: dict[str, dict[tuple[str, str], list[Any]]] = {arm: {} for arm in ARMS}
        self.changed: dict[str, list[Any]] = {arm: [0, Decimal(0)] for arm in ARMS}

    def is_challenger(self, account_id: str) -> bool:
        """Whether the account is in the challenger arm."""
        return arm_of(account_id, self.experiment.salt, self.experiment.challenger.share)

    def add(
        self, arm: str, new: dict[str, Any], old: dict[str, Any], balance: Decimal, days: int, moved: bool
    ) -> None:
        """One decided account (the reference engine's path)."""
        self.builders[arm].add(new, balance, days)
        self.accounts[arm][0] += 1
        self.accounts[arm][1] += balance
        entry = self.transitions[arm].setdefault((label(old), label(new)), [0, Decimal(0)])
        entry[0] += 1
        entry[1] += balance
        if moved:
            self.changed[arm][0] += 1
            self.changed[arm][1] += balance

    def freeze(self) -> dict[str, ArmSummary]:
        """The arms' summaries, champion first."""
        return {
            arm: ArmSummary(
                arm=arm,
                accounts=self.accounts[arm][0],
                balance=self.accounts[arm][1],
                decisions=self.builders[arm].freeze(),
                transitions={k: Tally(v[0], v[1]) for k, v in sorted(self.transitions[arm].items())},
                changed=self.changed[arm][0],
                changed_balance=self.changed[arm][1],
            )
            for arm in ARMS
        }
