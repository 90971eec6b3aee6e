"""Schemathesis against the real service's own OpenAPI document.

Counts the requests the server actually answered (from its own Prometheus counter) and the 5xx
among them, and records schemathesis' verdict on `not_a_server_error` and
`response_schema_conformance`.

    .venv/bin/python bench/api_schemathesis.py              # >= 1,000 requests, writes results
    .venv/bin/python bench/api_schemathesis.py --as-test    # a quick run (fewer examples)
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.service_harness import TOKEN, BenchServer  # noqa: E402

RESULTS = Path(__file__).parent / "results"
CHECKS = "not_a_server_error,response_schema_conformance"


def served(server: BenchServer) -> dict[str, int]:
    """Requests the server answered so far, by status code, excluding /metrics itself."""
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    counts: dict[str, int] = {}
    pattern = (
        r'rldojo_http_requests_total\{method="[^"]*",route="([^"]*)",status="(\d+)"\} ([\d.e+]+)'
    )
    for route, code, value in re.findall(pattern, text):
        if route != "/metrics":
            counts[code] = counts.get(code, 0) + int(float(value))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--as-test", action="store_true", help="quick run, no result file")
    parser.add_argument("--max-examples", type=int, default=None)
    args = parser.parse_args()
    examples = args.max_examples or (10 if args.as_test else 100)
    with BenchServer(RLDOJO_MAX_EVAL_EPISODES="100") as server:
        before = served(server)
        command = [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            str(examples),
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--seed",
            "1",
            "--request-timeout",
            "60",
            "--continue-on-failure",
            "--workers",
            "2",
        ]
        started = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        after = served(server)
    delta = {code: after.get(code, 0) - before.get(code, 0) for code in after}
    delta = {code: n for code, n in sorted(delta.items()) if n}
    total = sum(delta.values())
    server_errors = sum(n for code, n in delta.items() if code.startswith("5"))
    tail = run.stdout[-4000:]
    (RESULTS / "api_schemathesis.log").write_text(run.stdout)
    print(tail)
    print(f"requests answered: {total} by status {delta}; 5xx: {server_errors}; {seconds:.0f} s")
    ok = run.returncode == 0 and server_errors == 0
    if not args.as_test:
        record = {
            "benchmark": "schemathesis against the service's OpenAPI document",
            "command": ".venv/bin/python bench/api_schemathesis.py " + " ".join(sys.argv[1:]),
            "schemathesis_command": " ".join(
                c if "Bearer" not in c else "Authorization: Bearer <token>" for c in command
            ),
            "machine": f"{platform.node()} {platform.machine()} {platform.processor()} (2 cores)",
            "checks": CHECKS,
            "max_examples_per_operation": examples,
            "requests_answered": total,
            "by_status": delta,
            "server_errors_5xx": server_errors,
            "schemathesis_exit_code": run.returncode,
            "seconds": round(seconds, 1),
            "passed": ok,
            "schemathesis_summary": tail[-2500:],
        }
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "api_schemathesis.json").write_text(json.dumps(record, indent=2) + "\n")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
