"""Control-plane latency: submit -> first metric row, and GET /v1/jobs/{id} under load.

In the same run, the same training entrypoint is submitted straight to Ray Jobs
(`JobSubmissionClient.submit_job`) so both submit paths are timed side by side.

    .venv/bin/python bench/api_latency.py              # 3 submits each, 20 clients x 30 s
    .venv/bin/python bench/api_latency.py --as-test    # 1 submit each, 20 clients x 5 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.service_harness import BenchServer  # noqa: E402

RESULTS = Path(__file__).parent / "results"
SPEC = {"algorithm": "q_learning", "env": "rldojo/GridWorld-v0", "stop": {"iterations": 20}}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def via_service(server: BenchServer, http: httpx.Client) -> dict[str, float | str]:
    start = time.perf_counter()
    job = http.post("/v1/jobs", json=SPEC).raise_for_status().json()
    submitted = time.perf_counter() - start
    while not http.get(f"/v1/jobs/{job['id']}/metrics").json():
        time.sleep(0.05)
    first_row = time.perf_counter() - start
    while http.get(f"/v1/jobs/{job['id']}").json()["status"] in ("PENDING", "RUNNING"):
        time.sleep(0.2)
    return {"job_id": job["id"], "submit_s": submitted, "first_row_s": first_row}


def via_ray_jobs(server: BenchServer, index: int) -> dict[str, float]:
    from ray.job_submission import JobSubmissionClient

    from service import cluster
    from service.settings import Settings

    connection = cluster.connect(Settings(data_dir=server.data_dir))
    client = JobSubmissionClient(connection.address, headers=connection.headers)
    out = server.data_dir / "ray-direct" / str(index)
    spec = out / "spec.json"
    out.mkdir(parents=True)
    spec.write_text(json.dumps(SPEC))
    command = [cluster.executable("rldojo"), "train", "--spec", str(spec), "--out", str(out)]
    entrypoint = f"exec {shlex.join(command)}"
    start = time.perf_counter()
    submission = client.submit_job(entrypoint=entrypoint)
    submitted = time.perf_counter() - start
    while not any(p.stat().st_size for p in out.glob("run/*/result.json")):
        time.sleep(0.05)
    first_row = time.perf_counter() - start
    while client.get_job_status(submission) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(0.2)
    return {"submit_s": submitted, "first_row_s": first_row}


async def hammer(server: BenchServer, job_id: str, clients: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def one(http: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            response = await http.get(f"/v1/jobs/{job_id}")
            latencies.append(time.perf_counter() - start)
            response.raise_for_status()

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers, limits=limits, timeout=60
    ) as http:
        await asyncio.gather(*(one(http) for _ in range(clients)))
    return latencies


def summarize(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--as-test", action="store_true")
    args = parser.parse_args()
    repeats, seconds, clients = (1, 5.0, 20) if args.as_test else (3, 30.0, 20)
    with (
        BenchServer() as server,
        httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as http,
    ):
        service_runs, ray_runs = [], []
        for index in range(repeats):  # alternate, so neither path gets a warmer machine
            service_runs.append(via_service(server, http))
            ray_runs.append(via_ray_jobs(server, index))
        job_id = str(service_runs[-1]["job_id"])
        latencies = asyncio.run(hammer(server, job_id, clients, seconds))
    record: dict[str, Any] = {
        "benchmark": "rldojo control-plane latency",
        "command": ".venv/bin/python bench/api_latency.py" + (" --as-test" if args.as_test else ""),
        "machine": f"{platform.node()} {platform.machine()} (2 cores, shared)",
        "spec": SPEC,
        "service_submit_to_first_row": summarize([float(r["first_row_s"]) for r in service_runs]),
        "service_post_jobs_latency": summarize([float(r["submit_s"]) for r in service_runs]),
        "ray_jobs_submit_to_first_row": summarize([r["first_row_s"] for r in ray_runs]),
        "ray_jobs_submit_job_latency": summarize([r["submit_s"] for r in ray_runs]),
        "get_job": {
            "clients": clients,
            "seconds": seconds,
            "requests": len(latencies),
            "requests_per_s": round(len(latencies) / seconds, 1),
            "p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
            "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
            "job_status": "SUCCEEDED (terminal: no Ray call per request)",
        },
    }
    print(json.dumps(record, indent=2))
    if not args.as_test:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "api_latency.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
