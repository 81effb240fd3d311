"""Prometheus metrics, one registry per application (never the global one),
so that several apps (tests, embedded servers) can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The server's counters and histograms (labels carry no personal data:
    policy ids, statuses, tier ids, error codes, route templates)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "escalation_decisions",
            "Decisions returned, by policy (or experiment), arm (empty for a policy), status and action",
            ["policy", "arm", "status", "action"],
            registry=self.registry,
        )
        self.errors = Counter(
            "escalation_decision_errors",
            "Records that could not be decided (error rows and 422 answers), by policy and code",
            ["policy", "code"],
            registry=self.registry,
        )
        self.requests = Counter(
            "escalation_http_requests",
            "HTTP requests, by route template, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "escalation_http_request_duration_seconds",
            "Time from request to response, by route template",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "escalation_batch_records",
            "Records per decide/explain request",
            buckets=(1, 10, 100, 1000, 10000),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "escalation_http_requests_in_flight", "Requests being handled", registry=self.registry
        )
        self.reloads = Counter(
            "escalation_policy_reloads",
            "Policy reloads, by result (changed, unchanged, invalid)",
            ["result"],
            registry=self.registry,
        )
        self.policy_info = Gauge(
            "escalation_policy_info",
            "The served policies (value 1), by id, version and fingerprint",
            ["policy", "version", "fingerprint"],
            registry=self.registry,
        )

        self.experiment_info = Gauge(
            "escalation_experiment_info",
            "The served experiments' arms (value: the arm's share of accounts), by experiment, arm "
            "and the arm's policy id, version and fingerprint",
            ["experiment", "arm", "policy", "version", "fingerprint"],
            registry=self.registry,
        )

    def served(self, policies: list[tuple[str, str, str]]) -> None:
        """Set ``escalation_policy_info`` to exactly ``policies`` (id, version, fingerprint)."""
        self.policy_info.clear()
        for policy_id, version, fingerprint in policies:
            self.policy_info.labels(policy_id, version, fingerprint).set(1)

    def served_experiments(self, arms: list[tuple[str, str, str, str, str, float]]) -> None:
        """Set ``escalation_experiment_info`` to exactly ``arms`` (experiment,
        arm, policy id, version, fingerprint, share)."""
        self.experiment_info.clear()
        for experiment, arm, policy_id, version, fingerprint, share in arms:
            self.experiment_info.labels(experiment, arm, policy_id, version, fingerprint).set(share)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
