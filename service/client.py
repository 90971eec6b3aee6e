"""The Python SDK for the rldojo service; the CLI uses only this.

Example:
    >>> from service.client import Client
    >>> with Client("http://127.0.0.1:8000") as client:  # doctest: +SKIP
    ...     job = client.submit({"algorithm": "q_learning", "stop": {"iterations": 20}})
    ...     for row in client.follow_metrics(job["id"]):
    ...         print(row["training_iteration"])
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

TERMINAL = ("STOPPED", "SUCCEEDED", "FAILED", "LOST")


class APIError(Exception):
    """A non-2xx answer: `status` and the server's `detail` (a message or field errors)."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        if isinstance(detail, list):
            text = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in detail
            )
        else:
            text = str(detail)
        super().__init__(f"HTTP {status}: {text}")


class Client:
    """Talks to one rldojo server.

    Args:
        url: the server; default `RLDOJO_URL` or http://127.0.0.1:8000.
        token: a bearer token; default `RLDOJO_TOKEN`.
        timeout: seconds per request (streams have no read timeout).
    """

    def __init__(
        self, url: str | None = None, token: str | None = None, timeout: float = 60.0
    ) -> None:
        self.url = (url or os.environ.get("RLDOJO_URL") or "http://127.0.0.1:8000").rstrip("/")
        token = token or os.environ.get("RLDOJO_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except (ValueError, AttributeError):
                detail = response.text
            raise APIError(response.status_code, detail)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # ---- jobs -------------------------------------------------------------------------------

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Submit a job spec; returns the job record (its `id` names it from now on)."""
        result: dict[str, Any] = self._json("POST", "/v1/jobs", json=spec)
        return result

    def jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        """The caller's jobs, newest first."""
        params = {"status": status} if status else None
        result: list[dict[str, Any]] = self._json("GET", "/v1/jobs", params=params)
        return result

    def job(self, job_id: str) -> dict[str, Any]:
        """One job with its latest metrics, best trial and checkpoint count."""
        result: dict[str, Any] = self._json("GET", f"/v1/jobs/{job_id}")
        return result

    def stop(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", f"/v1/jobs/{job_id}/stop")
        return result

    def resume(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", f"/v1/jobs/{job_id}/resume")
        return result

    def delete(self, job_id: str, purge: bool = False) -> None:
        self._request("DELETE", f"/v1/jobs/{job_id}", params={"purge": str(purge).lower()})

    def metrics(self, job_id: str) -> list[dict[str, Any]]:
        """Every trial's per-iteration rows so far."""
        result: list[dict[str, Any]] = self._json("GET", f"/v1/jobs/{job_id}/metrics")
        return result

    def logs(self, job_id: str) -> str:
        return self._request("GET", f"/v1/jobs/{job_id}/logs").text

    def _events(self, path: str) -> Iterator[tuple[str, Any]]:
        """Server-sent events of a stream as (event, data) pairs, until the server ends it."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=None)
        with self._http.stream("GET", path, params={"follow": "true"}, timeout=timeout) as stream:
            if stream.status_code >= 400:
                stream.read()
                raise APIError(stream.status_code, stream.json().get("detail"))
            event, data = "message", []
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield event, json.loads("\n".join(data))
                    event, data = "message", []

    def follow_metrics(self, job_id: str) -> Iterator[dict[str, Any]]:
        """Each new metric row as it is written, until the job ends."""
        for event, data in self._events(f"/v1/jobs/{job_id}/metrics"):
            if event == "metrics":
                yield data

    def follow_logs(self, job_id: str) -> Iterator[str]:
        """Each new log line, until the job ends."""
        for event, data in self._events(f"/v1/jobs/{job_id}/logs"):
            if event == "log":
                yield data

    def wait(self, job_id: str, timeout: float = 600.0, poll: float = 1.0) -> dict[str, Any]:
        """Poll until the job is terminal; returns its record."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in TERMINAL or time.monotonic() > deadline:
                return job
            time.sleep(poll)

    # ---- checkpoints ------------------------------------------------------------------------

    def checkpoints(self, job_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json("GET", f"/v1/jobs/{job_id}/checkpoints")
        return result

    def download(self, job_id: str, checkpoint_id: str, out: Path) -> Path:
        """Download a checkpoint (`best` or an id) and unpack it in `out`; returns its folder."""
        out.mkdir(parents=True, exist_ok=True)
        archive = out / f"{job_id}-{checkpoint_id}.tar.gz"
        path = f"/v1/jobs/{job_id}/checkpoints/{checkpoint_id}/archive"
        with self._http.stream("GET", path) as stream:
            if stream.status_code >= 400:
                stream.read()
                raise APIError(stream.status_code, stream.json().get("detail"))
            with archive.open("wb") as handle:
                for chunk in stream.iter_bytes():
                    handle.write(chunk)
        with tarfile.open(archive) as tar:
            top = {name.split("/")[0] for name in tar.getnames()}
            tar.extractall(out, filter="data")
        archive.unlink()
        return out / sorted(top)[0]

    # ---- evaluations ------------------------------------------------------------------------

    def evaluate(
        self,
        job_id: str,
        checkpoint_id: str = "best",
        episodes: int = 10,
        seed: int = 0,
        video: bool = False,
    ) -> dict[str, Any]:
        """Start an evaluation; returns its record (poll `evaluation` or use `wait_evaluation`)."""
        body = {
            "job_id": job_id,
            "checkpoint_id": checkpoint_id,
            "episodes": episodes,
            "seed": seed,
            "video": video,
        }
        result: dict[str, Any] = self._json("POST", "/v1/evaluations", json=body)
        return result

    def evaluation(self, evaluation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/v1/evaluations/{evaluation_id}")
        return result

    def wait_evaluation(
        self, evaluation_id: str, timeout: float = 600.0, poll: float = 1.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            evaluation = self.evaluation(evaluation_id)
            if evaluation["status"] in TERMINAL or time.monotonic() > deadline:
                return evaluation
            time.sleep(poll)

    def video(self, evaluation_id: str, out: Path) -> Path:
        """Save an evaluation's video to `out`."""
        response = self._request("GET", f"/v1/evaluations/{evaluation_id}/video")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(response.content)
        return out

    # ---- catalog and health -----------------------------------------------------------------

    def algorithms(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json("GET", "/v1/algorithms")
        return result

    def envs(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json("GET", "/v1/envs")
        return result

    def cluster(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/v1/cluster")
        return result

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/healthz")
        return result
