"""The public API: ``escalation.__all__`` is sorted, complete and importable."""

from __future__ import annotations

import subprocess
import sys

import escalation


def test_all_is_sorted() -> None:
    """``__all__`` is sorted so additions are reviewable."""
    assert sorted(escalation.__all__) == list(escalation.__all__)


def test_all_names_exist_and_show_public_module() -> None:
    """Every exported class reports ``escalation`` as its module (httpx-style)."""
    for name in escalation.__all__:
        obj = getattr(escalation, name)
        if isinstance(obj, type):
            assert obj.__module__ == "escalation", name


def test_public_classes_are_exported() -> None:
    """Public classes defined in public modules are re-exported at the top."""
    from escalation import decision, errors, record

    for module in (decision, errors, record):
        for name in module.__all__:
            if isinstance(getattr(module, name), type):
                assert name in escalation.__all__, f"{module.__name__}.{name} is not exported"


def test_import_has_no_side_effects() -> None:
    """Importing the package prints nothing and starts no threads."""
    code = "import threading, escalation; print(threading.active_count())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "1" == out.stdout.strip()
    assert "" == out.stderr
