"""Strategy simulation: advance a portfolio day by day under a policy and a
baseline, with customer answers drawn from a response model, and report
actions, cost, recoveries, cures and rolls — with champion/challenger arms.

Needs the ``[portfolio]`` extra (pyarrow, numpy, plotly) to run; the response
model itself loads without it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from escalation.simulate.experiment import arm_of
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


def __getattr__(name: str) -> Any:
    if name in ("Arms", "SimulationResult", "simulate"):
        from escalation.simulate import run

        return getattr(run, name)
    raise AttributeError(name)
