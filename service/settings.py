"""Service settings, read from `RLDOJO_*` environment variables (pydantic-settings).

Example:
    >>> from service.settings import Settings
    >>> Settings(data_dir="/tmp/rldojo-doc").database_url
    'sqlite:////tmp/rldojo-doc/rldojo.db'
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.webhook_targets import allow_entry


@dataclass(frozen=True)
class Quota:
    """What one owner's running jobs may hold at once (None: no limit)."""

    running_jobs: int | None = None
    cpus: float | None = None
    gpus: float | None = None
    high_jobs: int | None = None  # jobs at `high` priority at once, queued or running

    def allows_high(self, jobs: int) -> bool:
        """True when the owner may have `jobs` jobs at high priority at once."""
        return self.high_jobs is None or jobs <= self.high_jobs

    def allows(self, jobs: int, cpus: float, gpus: float) -> bool:
        """True when running `jobs` jobs holding `cpus` and `gpus` stays within the quota."""
        return (
            (self.running_jobs is None or jobs <= self.running_jobs)
            and (self.cpus is None or cpus <= self.cpus + 1e-9)
            and (self.gpus is None or gpus <= self.gpus + 1e-9)
        )


class Settings(BaseSettings):
    """Everything the API process needs; built once by `rldojo serve` and passed to `create_app`.

    Attributes:
        data_dir: local directory for the database, the embedded Ray head's state and, by
            default, the storage root.
        ray_address: dashboard URL of an existing Ray cluster (`http://head:8265`); None starts
            (or re-joins) an embedded head owned by this data directory.
        ray_auth_token: token for a token-authenticated Ray cluster; None reads Ray's own
            (`RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH`, `~/.ray/auth_token`) or the embedded head's.
        ray_num_cpus: CPUs the embedded head offers (None: all of the machine's).
        ray_nice: how much lower the embedded head's processes (and so its jobs) run than
            the API (Unix niceness, 0-19): training keeps the CPUs it is offered busy, and the
            API, sharing the machine with it, must still answer at once.
        database_url: SQLAlchemy URL (None: a SQLite file in `data_dir`).
        storage_root: where Tune results, checkpoints and evaluations go: a local path or an
            `s3://bucket/prefix` URI (None: `data_dir/storage`). Every Ray node must reach it:
            a path they all mount, or S3, whose keys and endpoint come from the standard
            variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`,
            `AWS_ENDPOINT_URL` for an S3-compatible server) in the API's and every node's
            environment; pyarrow, and so Ray Tune, reads them there.
        host, port: where `rldojo serve` binds.
        api_tokens: {token: owner}; empty means no auth, which is only allowed on loopback.
        max_body_bytes: request bodies larger than this are refused with 413.
        max_eval_episodes: evaluations asking for more episodes are refused with 422.
        poll_seconds: how often streams poll Ray and storage.
        stop_grace_seconds: how long a stopping job's trainer may take to end by itself
            before Ray Jobs stops its driver (SIGTERM, then SIGKILL).
        max_cluster_cpus, max_cluster_gpus: the most an autoscaling cluster can grow to; a job
            whose trial needs more is refused at submit (None: what the cluster has now).
        quota_running_jobs, quota_cpus, quota_gpus: what one owner's running jobs may hold at
            once (None: no limit); `quotas` sets them per owner
            (`{"alice": {"running_jobs": 4, "cpus": 8}}`), over these defaults.
        quota_high_jobs: how many jobs one owner may have at `high` priority at once (queued
            or running; `high` jobs start first and preempt others). Unset: no limit on a
            single-user service (no API tokens), none allowed once there are tokens: an
            operator grants it per owner (`quotas`: `{"alice": {"high_jobs": 2}}`) or to all.
        mlflow_tracking_uri: the MLflow tracking store that jobs asking for it
            (`"tracking": {"mlflow": true}`) log their trials to: an MLflow server
            (`http://mlflow:5000`) or a database (`sqlite:////shared/mlflow.db`), which every
            node's job driver must reach; None refuses such jobs at submit. Credentials come
            from MLflow's own variables (`MLFLOW_TRACKING_TOKEN`, `MLFLOW_TRACKING_USERNAME`,
            `MLFLOW_TRACKING_PASSWORD`) on the nodes, never from the URI: it is stored with
            each job it was compiled into.
        webhook_attempts: deliveries of a webhook event tried before it is marked failed
            (backoff doubling from 1 s to at most 5 minutes between tries).
        webhook_allow_http: webhook URLs may be plain http (by default https only).
        webhook_allow: the webhook allow-list: host names, addresses and CIDR networks that
            receivers may be at although they are not global (`127.0.0.1,hooks.internal,
            10.1.0.0/16`; comma-separated or a JSON list). See `service/webhook_targets.py`.
        webhook_disable_after: a webhook is disabled after this many deliveries in a row
            failed (every try spent, or its URL refused); 0 never disables.
        webhook_workers: deliveries sent at once (threads), over all webhooks.
        webhook_in_flight: deliveries sent at once to one webhook.
        webhook_connect_timeout_seconds, webhook_timeout_seconds: how long a try waits to
            connect, and then for each read or write of the request and the answer.
    """

    model_config = SettingsConfigDict(env_prefix="RLDOJO_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path.home() / ".rldojo")
    ray_address: str | None = None
    ray_auth_token: str | None = None
    ray_num_cpus: int | None = None
    ray_nice: int = Field(default=10, ge=0, le=19)
    database_url: str | None = None
    storage_root: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_tokens: dict[str, str] = Field(default_factory=dict)
    max_body_bytes: int = 1_048_576
    max_eval_episodes: int = 1000
    poll_seconds: float = 1.0
    stop_grace_seconds: float = 20.0
    max_cluster_cpus: float | None = None
    max_cluster_gpus: float | None = None
    quota_running_jobs: int | None = None
    quota_cpus: float | None = None
    quota_gpus: float | None = None
    quota_high_jobs: int | None = None
    quotas: dict[str, dict[str, float]] = Field(default_factory=dict)
    mlflow_tracking_uri: str | None = None
    webhook_attempts: int = Field(default=12, ge=1)
    webhook_allow_http: bool = False
    webhook_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_disable_after: int = Field(default=20, ge=0)
    webhook_workers: int = Field(default=8, ge=1, le=256)
    webhook_in_flight: int = Field(default=2, ge=1)
    webhook_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)

    @field_validator("webhook_allow", mode="before")
    @classmethod
    def _allow_list(cls, value: Any) -> Any:
        """`a,b,c` or a JSON list; each entry a host name, an address or a CIDR network."""
        if isinstance(value, str):
            value = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
        if isinstance(value, list):
            value = [entry.strip() for entry in value if isinstance(entry, str) and entry.strip()]
            for entry in value:
                allow_entry(entry)  # a ValueError names the entry
        return value

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        """The URI goes into every tracked job's compiled job: no password may travel with it."""
        if value is not None and "@" in value.split("://", 1)[-1].split("/", 1)[0]:
            raise ValueError(
                "the MLflow tracking URI carries credentials; set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) on the nodes instead"
            )
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.data_dir / 'rldojo.db'}"
        if self.storage_root is None:
            self.storage_root = str(self.data_dir / "storage")
        return self

    @property
    def auth_enabled(self) -> bool:
        """True when bearer tokens are required."""
        return bool(self.api_tokens)

    def check_bind(self) -> None:
        """Refuse to expose an unauthenticated service beyond loopback.

        Raises:
            ValueError: `host` is not a loopback address and no API tokens are configured.
        """
        if self.auth_enabled or _is_loopback(self.host):
            return
        raise ValueError(
            f"refusing to bind to {self.host} without API tokens: set RLDOJO_API_TOKENS "
            '(e.g. \'{"<token>": "<owner>"}\') or bind to 127.0.0.1'
        )

    def quota_of(self, owner: str) -> Quota:
        """The owner's quota: the defaults, with their own entry in `quotas` over them."""
        own = self.quotas.get(owner, {})
        running = own.get("running_jobs", self.quota_running_jobs)
        high = own.get("high_jobs", self._default_high_jobs())
        return Quota(
            running_jobs=int(running) if running is not None else None,
            cpus=own.get("cpus", self.quota_cpus),
            gpus=own.get("gpus", self.quota_gpus),
            high_jobs=int(high) if high is not None else None,
        )

    def _default_high_jobs(self) -> int | None:
        if "quota_high_jobs" in self.model_fields_set:
            return self.quota_high_jobs
        return 0 if self.auth_enabled else None

    def public(self) -> dict[str, Any]:
        """Settings safe to log (no tokens)."""
        return self.model_dump(exclude={"api_tokens", "ray_auth_token"}, mode="json")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
