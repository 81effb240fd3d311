"""Champion/challenger experiments, as the simulator uses them: the file
format, :func:`arm_of` and the loader live in :mod:`escalation.experiment`
(the engine, the dry-run and the simulator share one assignment rule)."""

from __future__ import annotations

from escalation.experiment import Challenger, Experiment, arm_of, load_experiment, parse_share

__all__ = ["Challenger", "Experiment", "arm_of", "load_experiment", "parse_share"]
