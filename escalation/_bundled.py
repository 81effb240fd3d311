"""Where the shipped policies, rule packs and examples live: inside the
installed wheel (``escalation/_bundled/``) or, in a source checkout, at the
repository root."""

from __future__ import annotations

from pathlib import Path

DEFAULT_POLICY = "policies/consumer-credit-cn.yaml"
#: The policies shipped with the package (each with its ``_test.yaml`` suite).
#: Other files a strategist leaves in ``policies/`` (a candidate) are not
#: shipped policies: no suite is required of them.
SHIPPED_POLICIES = ("consumer-credit-cn", "ie-consumer-loan", "uk-consumer-loan", "us-card-collector")
DEFAULT_ACCOUNT = "examples/account.json"


def bundled(relative: str) -> Path:
    """The shipped file ``relative`` (e.g. ``policies/consumer-credit-cn.yaml``)."""
    package = Path(__file__).resolve().parent
    for base in (package / "_bundled", package.parent):
        candidate = base / relative
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"bundled file `{relative}` is not installed")
