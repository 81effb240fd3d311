"""The server's state: the served policies and experiments, in-flight decisions, reload."""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio
from fastapi import Request

from escalation import (
    Journal,
    Masking,
    Policy,
    PolicyError,
    open_journal,
)
from escalation.serve._shared import T
from escalation.serve.config import ServeConfig, read_token
from escalation.serve.errors import (
    ApiError,
    _DeadlineExceeded,
)
from escalation.serve.metrics import Metrics
from escalation.serve.models import (
    ServedExperiment,
    ServedPolicy,
)
from escalation.serve.policies import PolicySet, Served
from escalation.serve.policies import ServedExperiment as _Experiment


class _InFlight:
    """Decisions being computed (in worker threads), so shutdown can wait for
    them — including a batch whose request already timed out — before the
    journal is closed."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()

    def __enter__(self) -> None:
        with self._cond:
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is in flight; whether that happened in time."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout=timeout)


class ReloadFailedError(Exception):
    """A reload found an invalid policy or token; the old ones keep serving."""

    def __init__(self, issues: list[str]) -> None:
        super().__init__("; ".join(issues))
        self.issues = issues


class Server:
    """Everything one application instance serves with."""

    def __init__(self, config: ServeConfig, journal: Journal | None = None) -> None:
        self.config = config
        self.journal = journal
        if journal is None and config.journal is not None:
            journal = self.journal = open_journal(config.journal, masking=Masking.from_env())
        self.policies = PolicySet(config.policies, journal, config.experiments)
        self.token = read_token(config)
        self.metrics = Metrics()
        self.in_flight = _InFlight()
        self._publish()

    def _publish(self) -> None:
        self.metrics.served(
            [(s.policy.id, s.policy.version, s.policy.fingerprint) for s in self.policies.all()]
        )
        self.metrics.served_experiments(
            [
                (e.id, arm, policy.id, policy.version, policy.fingerprint, share)
                for e in self.policies.experiments()
                for arm, policy, share in (
                    ("champion", e.champion, 1 - e.experiment.challenger.share),
                    ("challenger", e.challenger, e.experiment.challenger.share),
                )
            ]
        )

    def reload(self) -> bool:
        """Reload policies (and the token file); whether a policy changed.
        Raises :class:`ReloadFailedError` and keeps everything as it was when
        anything is invalid."""
        try:
            token = read_token(self.config)
        except (OSError, ValueError) as exc:
            self.metrics.reloads.labels("invalid").inc()
            raise ReloadFailedError([f"token: {exc}"]) from None
        try:
            changed = self.policies.reload()
        except PolicyError as exc:
            self.metrics.reloads.labels("invalid").inc()
            raise ReloadFailedError([str(issue) for issue in exc.issues]) from None
        self.token = token
        self.metrics.reloads.labels("changed" if changed else "unchanged").inc()
        self._publish()
        return changed

    def validate(self) -> None:
        """Check that a reload would succeed, without switching."""
        try:
            read_token(self.config)
            self.policies.validate()
        except PolicyError as exc:
            raise ReloadFailedError([str(issue) for issue in exc.issues]) from None
        except (OSError, ValueError) as exc:
            raise ReloadFailedError([f"token: {exc}"]) from None

    def summaries(self) -> list[ServedPolicy]:
        """The served policies, for listings."""
        return [_summary(s) for s in self.policies.all()]

    def experiment_summaries(self) -> list[ServedExperiment]:
        """The served experiments, for listings."""
        return [_experiment_summary(e) for e in self.policies.experiments()]

    async def in_thread(self, work: Callable[[], T]) -> T:
        """Run ``work`` (decisions: CPU and journal I/O) in a worker thread,
        answering 504 after the request timeout (the thread finishes its
        current record and stops; shutdown waits for it)."""

        def tracked() -> T:
            with self.in_flight:
                return work()

        try:
            with anyio.fail_after(self.config.timeout):
                return await anyio.to_thread.run_sync(tracked, abandon_on_cancel=True)
        except (TimeoutError, _DeadlineExceeded):
            raise ApiError(
                504, "timeout", f"not decided within {self.config.timeout:g}s; retry, or send smaller batches"
            ) from None


def _summary(served: Served) -> ServedPolicy:
    return _policy_summary(served.policy)


def _experiment_summary(served: _Experiment) -> ServedExperiment:
    spec = served.experiment
    return ServedExperiment(
        id=spec.id,
        fingerprint=served.fingerprint,
        salt=spec.salt,
        share=spec.challenger.share,
        description=spec.description,
        champion=_policy_summary(served.champion),
        challenger=_policy_summary(served.challenger),
    )


def _policy_summary(policy: Policy) -> ServedPolicy:
    return ServedPolicy(
        id=policy.id,
        version=policy.version,
        fingerprint=policy.fingerprint,
        packs=list(policy.packs),
        currency=policy.header.currency,
        timezone=policy.header.timezone,
        tiers=[t.model.id for t in policy.tiers],
    )


def _server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server
