"""Load figures for ``escalation serve`` (a script, not a test).

Starts ``python -m escalation.serve`` on 127.0.0.1 (a free port), then drives
``POST /v1/decide`` from this process with httpx at concurrency 1, 8 and 64,
for single records and 100-record batches, without a journal and with a
SQLite journal (synchronous=FULL, the default). Every cell is bounded in
requests and in seconds. Prints decisions/s and request latency p50/p99.

    python benchmarks/serve_load.py            # the full matrix (about 2 minutes)
    python benchmarks/serve_load.py --quick    # fewer requests per cell
    python benchmarks/serve_load.py --experiment examples/experiment-lawyer-45.yaml   # serve an experiment

The client runs on the same machine as the server and takes CPU from it: the
figures are a floor for what a sidecar serves a separate caller."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "consumer-credit-cn.yaml"
AT = "2026-11-23T10:00:00+08:00"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    port: int, journal: str | None, workers: int, experiment: str | None = None
) -> subprocess.Popen[bytes]:
    served = ["--experiment", experiment] if experiment else ["--policy", str(POLICY)]
    args = [sys.executable, "-m", "escalation.serve", *served, "--port", str(port)]
    args += ["--host", "127.0.0.1", "--timeout", "120", "--max-batch", "1000", "--workers", str(workers)]
    if journal:
        args += ["--journal", journal]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def payload(batch: int, seq: int) -> bytes:
    account = json.loads((ROOT / "examples" / "account.json").read_text())
    if batch == 1:
        return json.dumps({"record": {**account, "id": f"B-{seq}"}, "at": AT}).encode()
    records = [{**account, "id": f"B-{seq}-{i}"} for i in range(batch)]
    return json.dumps({"records": records, "at": AT}).encode()


async def cell(
    url: str, batch: int, concurrency: int, max_requests: int, max_seconds: float
) -> dict[str, Any]:
    bodies = [payload(batch, i) for i in range(min(max_requests, 64))]
    latencies: list[float] = []
    failures = 0
    issued = 0
    stop_at = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as client:
        for body in bodies[:2]:  # warm up connections and the engine
            await client.post("/v1/decide", content=body, headers={"content-type": "application/json"})

        async def worker() -> None:
            nonlocal issued, failures
            while issued < max_requests and time.monotonic() < stop_at:
                body = bodies[issued % len(bodies)]
                issued += 1
                started = time.perf_counter()
                response = await client.post(
                    "/v1/decide", content=body, headers={"content-type": "application/json"}
                )
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "failures": failures,
        "decisions_per_s": len(latencies) * batch / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "seconds": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests per cell")
    parser.add_argument("--seconds", type=float, default=8.0, help="time cap per cell")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--experiment", metavar="FILE", help="serve this experiment instead of the CN policy")
    parser.add_argument("--journals", choices=["both", "none", "sqlite"], default="both")
    options = parser.parse_args()
    cap = 300 if options.quick else 2000
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"client and server on one machine; {options.experiment or POLICY.name}; "
          f"{options.workers} worker(s)")  # fmt: skip
    print(f"{'journal':8} {'batch':>5} {'conc':>4} {'requests':>8} {'fail':>4} {'decisions/s':>12} "
          f"{'p50 ms':>8} {'p99 ms':>8}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        journals = {"both": [None, "sqlite"], "none": [None], "sqlite": ["sqlite"]}[options.journals]
        for journal in (j and str(Path(tmp) / "journal.sqlite") for j in journals):
            port = free_port()
            server = start_server(port, journal, options.workers, options.experiment)
            try:
                for batch in (1, 100):
                    for concurrency in (1, 8, 64):
                        max_requests = cap if batch == 1 else max(cap // 20, concurrency * 2)
                        result = asyncio.run(
                            cell(
                                f"http://127.0.0.1:{port}", batch, concurrency, max_requests, options.seconds
                            )
                        )
                        print(
                            f"{'sqlite' if journal else 'none':8} {batch:>5} {concurrency:>4} "
                            f"{result['requests']:>8} {result['failures']:>4} "
                            f"{result['decisions_per_s']:>12,.0f} "
                            f"{result['p50_ms']:>8.1f} {result['p99_ms']:>8.1f}",
                            flush=True,
                        )
            finally:
                server.terminate()
                server.wait(60)


if __name__ == "__main__":
    main()
