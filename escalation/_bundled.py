"""Where the shipped policies, rule packs and examples live: inside the
installed wheel (``escalation/_bundled/``) or, in a source checkout, at the
repository root."""

from __future__ import annotations

from pathlib import Path

DEFAULT_POLICY = "policies/consumer-credit-cn.yaml"
DEFAULT_ACCOUNT = "examples/account.json"


def bundled(relative: str) -> Path:
    """The shipped file ``relative`` (e.g. ``policies/consumer-credit-cn.yaml``)."""
    package = Path(__file__).resolve().parent
    for base in (package / "_bundled", package.parent):
        candidate = base / relative
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"bundled file `{relative}` is not installed")
