"""Strategy simulation: advance a portfolio day by day under a policy and a
baseline, with customer answers drawn from a response model, and report
actions, cost, recoveries, cures and rolls — with champion/challenger arms.

Needs the ``[portfolio]`` extra (pyarrow, numpy, plotly) to run; the response
model itself loads without it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from escalation.simulate.model import (
    ResponseModel,
    ResponseModelError,
    bundled_model,
    load_response_model,
    response_model_schema,
)

if TYPE_CHECKING:
    from escalation.simulate.run import Arms, SimulationResult, simulate

__all__ = [
    "Arms",
    "ResponseModel",
    "ResponseModelError",
    "SimulationResult",
    "arm_of",
    "bundled_model",
    "load_response_model",
    "response_model_schema",
    "simulate",
]


def arm_of(account_id: str, salt: str, share: float) -> bool:
    """Whether ``account_id`` is in the challenger arm (see :mod:`escalation.simulate._rng`)."""
    import hashlib

    digest = hashlib.sha256(f"{salt}:{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < int(share * 2**64)


def __getattr__(name: str) -> Any:
    if name in ("Arms", "SimulationResult", "simulate"):
        from escalation.simulate import run

        return getattr(run, name)
    raise AttributeError(name)
