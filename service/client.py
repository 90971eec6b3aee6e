"""The Python SDK for the rldojo service; the CLI and the tests use only this.

Every call returns the API's own models (`service.schemas`): `JobOut`, `CheckpointOut`,
`EvaluationOut`, ...; metric rows stay plain dicts (their keys are Tune's).

Example:
    >>> from service.client import Client
    >>> with Client("http://127.0.0.1:8000") as client:  # doctest: +SKIP
    ...     job = client.submit({"algorithm": "q_learning", "stop": {"iterations": 20}})
    ...     for row in client.follow_metrics(job.id):
    ...         print(row["training_iteration"])
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from service.schemas import (
    AlgorithmOut,
    CheckpointOut,
    ClusterOut,
    CompareOut,
    DeliveryOut,
    EnvOut,
    EvaluationOut,
    HealthOut,
    JobOut,
    LeaderboardEntry,
    TrialsOut,
    WebhookOut,
)
from service.spec_model import JobSpec
from service.status import TERMINAL

M = TypeVar("M", bound=BaseModel)


def _spec_json(spec: JobSpec | dict[str, Any]) -> dict[str, Any]:
    """A spec's JSON body: only the fields a `JobSpec` was given (the server fills the rest)."""
    if isinstance(spec, JobSpec):
        return spec.model_dump(mode="json", exclude_unset=True)
    return spec


@dataclass(frozen=True)
class Pulled:
    """A downloaded checkpoint: the folder it was unpacked to and the archive's size."""

    folder: Path
    archive_bytes: int


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
        transport: the httpx transport (default: httpx's own, over the network).
        poll: seconds between looks while `wait` and `wait_evaluation` wait.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        poll: float = 1.0,
    ) -> None:
        self.poll = poll
        self.url = (url or os.environ.get("RLDOJO_URL") or "http://127.0.0.1:8000").rstrip("/")
        token = token or os.environ.get("RLDOJO_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

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

    def _one(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate(self._json(method, path, **kwargs))

    def _many(self, model: type[M], method: str, path: str, **kwargs: Any) -> list[M]:
        return TypeAdapter(list[model]).validate_python(  # type: ignore[valid-type]
            self._json(method, path, **kwargs)
        )

    # ---- jobs -------------------------------------------------------------------------------

    def submit(
        self,
        spec: JobSpec | dict[str, Any],
        idempotency_key: str | None = None,
        retries: int = 2,
    ) -> JobOut:
        """Submit a job spec; returns the job record (its `id` names it from now on).

        Args:
            spec: A `JobSpec` (the schema, `service.spec_model`; what it leaves unset the
                server fills in) or its JSON form; the server checks it whole either way.
            idempotency_key: The request's `Idempotency-Key` (a new random one per call if
                None): a connection lost before the answer is tried again, up to `retries`
                times, with the same key, so a retry gets the job the first try made, never a
                second job.
        """
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        body = _spec_json(spec)
        for _retry in range(retries):
            try:
                return self._one(JobOut, "POST", "/v1/jobs", json=body, headers=headers)
            except httpx.TransportError:  # sent, or not: the same key makes it safe to ask again
                time.sleep(0.5)
        return self._one(JobOut, "POST", "/v1/jobs", json=body, headers=headers)

    def jobs(
        self,
        status: str | None = None,
        summary: bool = False,
        *,
        algorithm: str | None = None,
        env: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        shared: bool = False,
        game: str | None = None,
    ) -> list[JobOut]:
        """Your jobs, newest first (with `shared`, others' shared jobs too), filtered by status,
        algorithm, env, ALE game, tag or owner; with `summary`, each one's latest metrics too."""
        wanted = {
            "status": status,
            "summary": "true" if summary else None,
            "algorithm": algorithm,
            "env": env,
            "game": game,
            "tag": tag,
            "owner": owner,
            "shared": "true" if shared else None,
        }
        params = {key: value for key, value in wanted.items() if value is not None}
        return self._many(JobOut, "GET", "/v1/jobs", params=params)

    def update(self, job_id: str, **changes: Any) -> JobOut:
        """Change a job's `priority`, `name`, `tags` or `shared` (PATCH)."""
        return self._one(JobOut, "PATCH", f"/v1/jobs/{job_id}", json=changes)

    def job(self, job_id: str) -> JobOut:
        """One job with its latest metrics, best trial and checkpoint count."""
        return self._one(JobOut, "GET", f"/v1/jobs/{job_id}")

    def stop(self, job_id: str, wait_s: float = 0.0) -> JobOut:
        """Stop a job. The API answers at once (STOPPING while its driver ends; a queued job is
        STOPPED at once); with `wait_s`, poll until it is STOPPED (or terminal) for that long.
        Stopping a STOPPING job again forces it."""
        job = self._one(JobOut, "POST", f"/v1/jobs/{job_id}/stop")
        return self.wait(job_id, timeout=wait_s, poll=0.25) if wait_s > 0 else job

    def resume(self, job_id: str, stop: dict[str, Any] | None = None) -> JobOut:
        """Continue a stopped, failed or lost job; with `stop` (e.g. `{"env_steps": 10**6}`),
        also a finished one, to that stop."""
        body = {"stop": stop} if stop else None
        return self._one(JobOut, "POST", f"/v1/jobs/{job_id}/resume", json=body)

    def delete(self, job_id: str, purge: bool = False) -> None:
        self._request("DELETE", f"/v1/jobs/{job_id}", params={"purge": str(purge).lower()})

    def metrics(self, job_id: str) -> list[dict[str, Any]]:
        """Every trial's per-iteration rows so far."""
        result: list[dict[str, Any]] = self._json("GET", f"/v1/jobs/{job_id}/metrics")
        return result

    def logs(self, job_id: str) -> str:
        return self._request("GET", f"/v1/jobs/{job_id}/logs").text

    def trials(self, job_id: str) -> TrialsOut:
        """The job's trials (best first: state, hyperparameters, iterations, best return) and
        PBT's perturbations."""
        return self._one(TrialsOut, "GET", f"/v1/jobs/{job_id}/trials")

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

    def wait(self, job_id: str, timeout: float = 600.0, poll: float | None = None) -> JobOut:
        """Poll (every `poll` s, default the client's) until the job is terminal; its record."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job.status in TERMINAL or time.monotonic() > deadline:
                return job
            time.sleep(self.poll if poll is None else poll)

    # ---- checkpoints ------------------------------------------------------------------------

    def checkpoints(self, job_id: str) -> list[CheckpointOut]:
        return self._many(CheckpointOut, "GET", f"/v1/jobs/{job_id}/checkpoints")

    def download(
        self, job_id: str, checkpoint_id: str, out: Path, *, with_replay: bool = False
    ) -> Path:
        """Download a checkpoint (`best` or an id) and unpack it in `out`; returns its folder."""
        return self.pull(job_id, checkpoint_id, out, with_replay=with_replay).folder

    def pull(
        self, job_id: str, checkpoint_id: str, out: Path, *, with_replay: bool = False
    ) -> Pulled:
        """`download`, saying how large the archive was: by default the config and weights
        only; `with_replay` brings the whole checkpoint (replay memory, optimizer state)."""
        out.mkdir(parents=True, exist_ok=True)
        archive = out / f"{job_id}-{checkpoint_id}.tar.gz"
        path = f"/v1/jobs/{job_id}/checkpoints/{checkpoint_id}/archive"
        params = {"with_replay": "true"} if with_replay else None
        with self._http.stream("GET", path, params=params) as stream:
            if stream.status_code >= 400:
                stream.read()
                raise APIError(stream.status_code, stream.json().get("detail"))
            with archive.open("wb") as handle:
                for chunk in stream.iter_bytes():
                    handle.write(chunk)
        size = archive.stat().st_size
        with tarfile.open(archive) as tar:
            top = {name.split("/")[0] for name in tar.getnames()}
            tar.extractall(out, filter="data")
        archive.unlink()
        return Pulled(folder=out / sorted(top)[0], archive_bytes=size)

    def export(
        self,
        job_id: str,
        checkpoint_id: str = "best",
        format: str = "auto",
        out: Path | None = None,
    ) -> tuple[Path, Path]:
        """Export a checkpoint's greedy policy (`rldojo play` runs it); returns (model, JSON).

        `out` is the model file (default `policy.<suffix>` here); the JSON goes beside it with
        the suffix `.json`. The server builds the files, which takes seconds (torch's export).
        """
        path = f"/v1/jobs/{job_id}/checkpoints/{checkpoint_id}/export"
        response = self._request("GET", path, params={"format": format}, timeout=600.0)
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            spec = json.loads(archive.read("policy.json"))
            data = archive.read(spec["file"])
        model = out if out is not None else Path(spec["file"])
        spec["file"] = model.name
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(data)
        spec_path = model.with_suffix(".json")
        spec_path.write_text(json.dumps(spec, indent=2) + "\n")
        return model, spec_path

    # ---- evaluations ------------------------------------------------------------------------

    def evaluate(
        self,
        job_id: str,
        checkpoint_id: str = "best",
        episodes: int = 10,
        seed: int = 0,
        video: bool = False,
        protocol: str = "book",
        epsilon: float | None = None,
    ) -> EvaluationOut:
        """Start an evaluation under `protocol` ("book" or "standard"); returns its record (poll
        `evaluation` or use `wait_evaluation`). `epsilon` None: the protocol's."""
        body = {
            "job_id": job_id,
            "checkpoint_id": checkpoint_id,
            "episodes": episodes,
            "seed": seed,
            "video": video,
            "protocol": protocol,
            **({"epsilon": epsilon} if epsilon is not None else {}),
        }
        return self._one(EvaluationOut, "POST", "/v1/evaluations", json=body)

    def evaluation(self, evaluation_id: str) -> EvaluationOut:
        return self._one(EvaluationOut, "GET", f"/v1/evaluations/{evaluation_id}")

    def wait_evaluation(
        self, evaluation_id: str, timeout: float = 600.0, poll: float | None = None
    ) -> EvaluationOut:
        deadline = time.monotonic() + timeout
        while True:
            evaluation = self.evaluation(evaluation_id)
            if evaluation.status in TERMINAL or time.monotonic() > deadline:
                return evaluation
            time.sleep(self.poll if poll is None else poll)

    def video(self, evaluation_id: str, out: Path) -> Path:
        """Save an evaluation's video to `out`."""
        response = self._request("GET", f"/v1/evaluations/{evaluation_id}/video")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(response.content)
        return out

    # ---- webhooks, comparison, leaderboard --------------------------------------------------

    def add_webhook(self, url: str, secret: str | None = None) -> WebhookOut:
        """Register a URL for your jobs' and evaluations' status changes; the answer holds the
        signing secret (shown this once)."""
        body = {"url": url, **({"secret": secret} if secret else {})}
        return self._one(WebhookOut, "POST", "/v1/webhooks", json=body)

    def webhooks(self) -> list[WebhookOut]:
        return self._many(WebhookOut, "GET", "/v1/webhooks")

    def webhook(self, webhook_id: str) -> WebhookOut:
        """One webhook: its URL and health (enabled, or disabled since when and why)."""
        return self._one(WebhookOut, "GET", f"/v1/webhooks/{webhook_id}")

    def update_webhook(self, webhook_id: str, *, enabled: bool) -> WebhookOut:
        """Disable a webhook, or enable it again (its URL checked anew, failures reset)."""
        body = {"enabled": enabled}
        return self._one(WebhookOut, "PATCH", f"/v1/webhooks/{webhook_id}", json=body)

    def delete_webhook(self, webhook_id: str) -> None:
        self._request("DELETE", f"/v1/webhooks/{webhook_id}")

    def deliveries(self, webhook_id: str) -> list[DeliveryOut]:
        """Every event sent (or being retried) to a webhook, newest first."""
        return self._many(DeliveryOut, "GET", f"/v1/webhooks/{webhook_id}/deliveries")

    def compare(self, job_ids: list[str], metric: str | None = None) -> CompareOut:
        """Several jobs' curves on one metric and the settings where they differ."""
        params = {"ids": ",".join(job_ids), **({"metric": metric} if metric else {})}
        return self._one(CompareOut, "GET", "/v1/compare", params=params)

    def leaderboard(
        self, env: str | None = None, limit: int = 50, game: str | None = None
    ) -> list[LeaderboardEntry]:
        """The best evaluated checkpoints you may see, best first within each env and game."""
        params = {
            "limit": limit,
            **({"env": env} if env else {}),
            **({"game": game} if game else {}),
        }
        return self._many(LeaderboardEntry, "GET", "/v1/leaderboard", params=params)

    # ---- catalog and health -----------------------------------------------------------------

    def algorithms(self) -> list[AlgorithmOut]:
        return self._many(AlgorithmOut, "GET", "/v1/algorithms")

    def envs(self) -> list[EnvOut]:
        return self._many(EnvOut, "GET", "/v1/envs")

    def cluster(self) -> ClusterOut:
        return self._one(ClusterOut, "GET", "/v1/cluster")

    def health(self) -> HealthOut:
        return self._one(HealthOut, "GET", "/healthz")
