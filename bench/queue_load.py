"""The shared cluster under load: 40 small jobs from 3 owners with a quota of 2 running jobs each.

On the 2-core machine, through the real service and its embedded Ray head:
- every job finishes, and no owner ever has more than 2 jobs running (checked at every look);
- GET /v1/jobs is polled by the three owners throughout: p50, p99, max;
- the time from a slot freeing (a job ending) to the next queued job starting, from the job
  events a webhook receiver on 127.0.0.1 gets (their times are the store's);
- webhook delivery latency (event time -> received), and what happens when the receiver is
  down for a minute in the middle of the run (connection refused): retries, then every event
  delivered once it is back.

    .venv/bin/python bench/queue_load.py              # 40 jobs, receiver down 60 s
    .venv/bin/python bench/queue_load.py --as-test    # 6 jobs, receiver down 5 s
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.service_harness import BenchServer  # noqa: E402

RESULTS = Path(__file__).parent / "results"
OWNERS = {f"load-token-{name}-000000": name for name in ("ann", "ben", "cat")}
SPEC = {"algorithm": "q_learning", "env": "rldojo/GridWorld-v0", "stop": {"iterations": 5}}
QUOTA = 2
ACTIVE = ("PENDING", "RUNNING", "STOPPING")


class Receiver(BaseHTTPRequestHandler):
    events: list[tuple[float, dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).events.append((time.time(), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Poller(threading.Thread):
    """Each owner lists their jobs in turn: latency, and their running count, at every look."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.done = url, threading.Event()
        self.latencies: list[float] = []
        self.most_running = {owner: 0 for owner in OWNERS.values()}

    def run(self) -> None:
        clients = {
            owner: httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {t}"})
            for t, owner in OWNERS.items()
        }
        while not self.done.is_set():
            for owner, http in clients.items():
                start = time.perf_counter()
                jobs = http.get("/v1/jobs", timeout=60).raise_for_status().json()
                self.latencies.append(time.perf_counter() - start)
                running = sum(job["status"] in ACTIVE for job in jobs)
                self.most_running[owner] = max(self.most_running[owner], running)
            time.sleep(0.2)


def _at(event: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(event["time"]).timestamp()


def slot_to_start(events: list[dict[str, Any]]) -> list[float]:
    """For each job start that followed a job's end while jobs waited: seconds in between."""
    changes = sorted(
        (_at(e), e["job"]["status"], e["job"]["previous_status"])
        for e in events
        if e["event"] == "job.status"
    )
    gaps, last_end, waiting = [], None, 0
    for moment, status, previous in changes:
        if status == "QUEUED":
            waiting += 1
        elif status == "PENDING" and previous == "QUEUED":
            waiting -= 1
            if last_end is not None:
                gaps.append(moment - last_end)
                last_end = None
        elif status in ("SUCCEEDED", "FAILED", "STOPPED") and waiting > 0:
            last_end = moment
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--as-test", action="store_true")
    args = parser.parse_args()
    count, down_s = (6, 5.0) if args.as_test else (40, 60.0)
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    port = receiver.server_address[1]
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = {"RLDOJO_QUOTA_RUNNING_JOBS": str(QUOTA), "RLDOJO_POLL_SECONDS": "0.5"}
    env.update(RLDOJO_WEBHOOK_ALLOW="127.0.0.1", RLDOJO_WEBHOOK_ALLOW_HTTP="true")  # its receiver
    with BenchServer(tokens=OWNERS, **env) as server:
        owners = [
            httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {t}"}, timeout=60)
            for t in OWNERS
        ]
        for http in owners:
            http.post("/v1/webhooks", json={"url": f"http://127.0.0.1:{port}/"}).raise_for_status()
        poller = Poller(server.url)
        poller.start()
        started = time.monotonic()
        ids = []
        for index in range(count):
            http = owners[index % len(owners)]
            job = http.post("/v1/jobs", json={**SPEC, "seed": index}).raise_for_status().json()
            ids.append((http, job["id"]))
        # The receiver goes down for a while in the middle of the run.
        time.sleep(10)
        receiver.shutdown()
        receiver.server_close()
        down_at = time.time()
        time.sleep(down_s)
        receiver = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        back_at = time.time()
        final = {}
        for http, job_id in ids:
            while True:
                job = http.get(f"/v1/jobs/{job_id}").json()
                if job["status"] in ("SUCCEEDED", "FAILED", "STOPPED", "LOST"):
                    final[job_id] = job["status"]
                    break
                time.sleep(1)
        wall = time.monotonic() - started
        poller.done.set()
        poller.join()
        # every delivery of every webhook reaches the receiver after it came back
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            logs = [
                http.get(f"/v1/webhooks/{hook['id']}/deliveries").json()
                for http in owners
                for hook in http.get("/v1/webhooks").json()
            ]
            if all(d["state"] == "delivered" for log in logs for d in log):
                break
            time.sleep(2)
        deliveries = [d for log in logs for d in log]
    received = Receiver.events
    latency = [at - _at(e) for at, e in received]
    during_outage = [at - _at(e) for at, e in received if down_at <= _at(e) <= back_at]
    unique = {e["delivery"]: e for _at, e in received}
    gaps = slot_to_start(list(unique.values()))
    record = {
        "benchmark": "shared cluster under load: queue, quotas, webhooks",
        "command": ".venv/bin/python bench/queue_load.py" + (" --as-test" if args.as_test else ""),
        "machine": f"{platform.node()} {platform.machine()} (2 cores, shared), embedded Ray head",
        "jobs": count,
        "owners": len(OWNERS),
        "quota_running_jobs": QUOTA,
        "spec": SPEC,
        "finished": {status: list(final.values()).count(status) for status in set(final.values())},
        "wall_s": round(wall, 1),
        "most_running_per_owner": poller.most_running,
        "get_jobs": {
            "requests": len(poller.latencies),
            "p50_ms": round(percentile(poller.latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(poller.latencies, 0.99) * 1000, 1),
            "max_ms": round(max(poller.latencies) * 1000, 1),
        },
        "slot_free_to_next_start_s": {
            "n": len(gaps),
            "median": round(statistics.median(gaps), 2) if gaps else None,
            "p90": round(percentile(gaps, 0.9), 2) if gaps else None,
            "max": round(max(gaps), 2) if gaps else None,
        },
        "webhooks": {
            "events": len(unique),
            "deliveries": len(deliveries),
            "all_delivered": all(d["state"] == "delivered" for d in deliveries),
            "duplicates_received": len(received) - len(unique),
            "latency_p50_s": round(percentile(latency, 0.5), 3),
            "latency_p99_s": round(percentile(latency, 0.99), 3),
            "receiver_down_s": down_s,
            "events_during_outage": len(during_outage),
            "outage_events_latency_max_s": round(max(during_outage), 1) if during_outage else None,
            "most_attempts": max((d["attempts"] for d in deliveries), default=0),
        },
    }
    print(json.dumps(record, indent=2))
    if not args.as_test:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "queue_load.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
