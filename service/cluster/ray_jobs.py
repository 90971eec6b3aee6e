"""Ray Jobs, as the service uses it: submit a command, read its status and logs, stop it.

Training jobs and evaluations are both Ray jobs; `status_from_ray` is the one translation of
Ray's job status into the store's, and `node_command` the one way to name this package's
programs on a cluster node.
"""

from __future__ import annotations

import datetime as dt
import logging
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray.job_submission import JobSubmissionClient

from service.cluster.connection import RayConnection
from service.lifecycle import RaySeen as RayState  # what Ray says of a job, in the store's terms
from service.settings import Settings
from service.status import JobStatus

logger = logging.getLogger(__name__)

_NOT_FOUND = "does not exist"


class ClusterUnavailableError(Exception):
    """The Ray cluster cannot be reached (HTTP 503)."""


def is_not_found(error: Exception) -> bool:
    """True when a Ray Jobs SDK error says the job id is unknown to the cluster."""
    return _NOT_FOUND in str(error) or "status code 404" in str(error)


def executable(name: str) -> str:
    """A console script of this environment (`rldojo`, `python`) by absolute path if present."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def node_command(name: str, args: Sequence[str], own: str | None = None) -> str:
    """Shell text that runs console script `name` with `args` on a cluster node.

    It runs this environment's copy (`own`, by default `executable(name)`) when the node has it
    at the same path, as on the embedded head or with one image everywhere, and otherwise the
    node's own `name` from its PATH (an existing cluster installed elsewhere). The shell `exec`s
    it, so the driver is the one process Ray Jobs signals when it stops the job.

    Example:
        >>> node_command("rldojo", ["train", "--name", "run"], own="/opt/venv/bin/rldojo")
        'exec "$(command -v /opt/venv/bin/rldojo || echo rldojo)" train --name run'
    """
    own = own or executable(name)
    program = name if own == name else f'"$(command -v {shlex.quote(own)} || echo {name})"'
    return f"exec {program} {shlex.join(args)}"


def status_from_ray(info: Any | None) -> RayState:
    """Ray's `JobDetails` (None: the cluster does not know the job) as the store's status."""
    if info is None:
        return RayState(JobStatus.LOST, "the Ray cluster lost it", None, _now())
    return RayState(
        JobStatus(str(getattr(info.status, "value", info.status))),
        str(info.message or ""),
        _from_ms(info.start_time),
        _from_ms(info.end_time),
        getattr(info, "driver_exit_code", None),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _from_ms(value: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC) if value else None


class RayJobs:
    """The Ray Jobs SDK client for the service's cluster, connected lazily and re-connectable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._client: JobSubmissionClient | None = None
        self.connection: RayConnection | None = None

    def connect(self) -> RayConnection:
        """Connect (starting the embedded head if needed) and return the connection."""
        from service.cluster.head import connect

        with self._lock:
            if self._client is None:
                try:
                    self.connection = connect(self.settings)
                    self._client = JobSubmissionClient(
                        self.connection.address, headers=self.connection.headers
                    )
                except (ConnectionError, RuntimeError, OSError) as error:
                    raise ClusterUnavailableError(f"Ray cluster unavailable: {error}") from None
            assert self.connection is not None
            return self.connection

    @property
    def client(self) -> JobSubmissionClient:
        self.connect()
        assert self._client is not None
        return self._client

    def submit(self, *, entrypoint: str, submission_id: str, metadata: dict[str, str]) -> str:
        """Submit, retrying while the head's job agent is still starting."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return str(
                    self.client.submit_job(
                        entrypoint=entrypoint, submission_id=submission_id, metadata=metadata
                    )
                )
            except RuntimeError as error:
                if "No available agent" not in str(error) or time.monotonic() > deadline:
                    raise ClusterUnavailableError(str(error).splitlines()[0]) from None
                time.sleep(1.0)
            except ConnectionError as error:
                raise ClusterUnavailableError(f"Ray cluster unavailable: {error}") from None

    def info(self, submission_id: str) -> Any | None:
        """Ray's JobDetails, None when the cluster does not know the id.

        Raises:
            ClusterUnavailableError: the dashboard cannot be reached.
        """
        try:
            return self.client.get_job_info(submission_id)
        except RuntimeError as error:
            if is_not_found(error):
                return None
            raise ClusterUnavailableError(str(error)) from None
        except (ConnectionError, OSError) as error:
            raise ClusterUnavailableError(f"Ray cluster unavailable: {error}") from None

    def state(self, submission_id: str) -> RayState:
        """The Ray job's status in the store's terms (LOST when the cluster forgot it)."""
        return status_from_ray(self.info(submission_id))

    def logs(self, submission_id: str) -> str | None:
        """The driver's log text, None when unknown or unreachable."""
        try:
            return str(self.client.get_job_logs(submission_id))
        except (RuntimeError, ConnectionError, OSError, ClusterUnavailableError):
            return None

    def stop(self, submission_id: str) -> bool:
        """Ask Ray to stop the job's driver (SIGTERM, then SIGKILL); False if none ran yet."""
        try:
            return bool(self.client.stop_job(submission_id))
        except RuntimeError as error:
            if is_not_found(error):
                return False
            raise ClusterUnavailableError(str(error)) from None
        except (ConnectionError, OSError) as error:
            raise ClusterUnavailableError(f"Ray cluster unavailable: {error}") from None

    def delete(self, submission_id: str) -> None:
        try:
            self.client.delete_job(submission_id)
        except (RuntimeError, ConnectionError, OSError, ClusterUnavailableError) as error:
            logger.info("could not delete Ray job %s: %s", submission_id, error)
