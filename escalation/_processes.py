"""How worker processes start: one choice for every process pool."""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

__all__ = ["SERVER_PRELOAD", "pool_context", "start_early"]

# What the forkserver imports before it forks any worker: the package's
# policies (pydantic's models: ~0.8 CPU-s a process). None of it starts a
# thread, unlike numpy (OpenBLAS) or Arrow (jemalloc's background thread, which
# a forked child would run without): workers import those themselves.
SERVER_PRELOAD = ("__main__", "escalation.policy")


def pool_context() -> BaseContext:
    """``forkserver`` where the platform has it, else ``spawn``; never ``fork``.

    A pool is often started after Arrow (or a user's own code) has started
    threads in this process, and a forked copy of a threaded process may
    deadlock in the child (Python 3.12+ warns of it). Workers therefore receive
    their inputs pickled and import what they need; scripts that start a pool
    need the usual ``if __name__ == "__main__":`` guard."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        # each worker forks from a server that has imported these once (no
        # effect once the server of this process runs)
        context.set_forkserver_preload(list(SERVER_PRELOAD))
    return context


def start_early() -> None:
    """Start the forkserver now, before the pool needs it: its preload (the
    package's imports, ~1 s) then runs on another core while this process
    loads the policies, instead of after. No effect under ``spawn`` or once
    the server runs."""
    if pool_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
