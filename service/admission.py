"""Admission: refuse at submit a job that could never get its resources; size what it holds.

A trial asks Ray for bundles (its own process, its EnvRunners, its learners; RLlib's
`default_resource_request`). A job that asks more CPUs or GPUs per trial than the whole cluster
has, or a bundle larger than any one node, would sit waiting forever; it is refused with the
field that asked too much and what the cluster has. An autoscaling cluster is judged by the
maxima in the settings (`max_cluster_cpus`, `max_cluster_gpus`) instead of what runs now.

What a job holds while it runs, the queue's unit, is its trials that run at once
(`resources.concurrent_trials`, by default as many as fit the cluster side by side); a job
that holds more than its owner's quota could never start, and is refused too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from service.compiler import CompiledJob
from service.settings import Quota
from service.spec import JobSpec, SpecError


@dataclass(frozen=True)
class Capacity:
    """What the cluster can ever offer: in all, and on its largest node."""

    cpus: float
    gpus: float
    node_cpus: float
    node_gpus: float

    @classmethod
    def from_summary(
        cls, summary: dict[str, Any], max_cpus: float | None, max_gpus: float | None
    ) -> Capacity:
        """From `cluster.cluster_summary`, with configured maxima taking precedence."""
        alive = [node["resources"] for node in summary["nodes"] if node["state"] == "ALIVE"]
        node_cpus = max((node.get("CPU", 0.0) for node in alive), default=0.0)
        node_gpus = max((node.get("GPU", 0.0) for node in alive), default=0.0)
        cpus = summary["resources"].get("CPU", 0.0)
        gpus = summary["resources"].get("GPU", 0.0)
        if max_cpus is not None:
            cpus, node_cpus = max_cpus, max(node_cpus, max_cpus)
        if max_gpus is not None:
            gpus, node_gpus = max_gpus, max(node_gpus, max_gpus)
        return cls(cpus=cpus, gpus=gpus, node_cpus=node_cpus, node_gpus=node_gpus)


def check_fits(spec: JobSpec, bundles: list[dict[str, float]], capacity: Capacity) -> None:
    """Raise `SpecError` naming the field when one trial of `spec` can never be placed.

    Args:
        spec: The job spec (to name the field that asked for too much).
        bundles: One trial's Ray resource bundles (`training.trial_resources`).
        capacity: What the cluster offers.
    """
    cpus = sum(bundle.get("CPU", 0.0) for bundle in bundles)
    gpus = sum(bundle.get("GPU", 0.0) for bundle in bundles)
    widest_cpu = max((bundle.get("CPU", 0.0) for bundle in bundles), default=0.0)
    widest_gpu = max((bundle.get("GPU", 0.0) for bundle in bundles), default=0.0)
    errors = []
    if gpus > capacity.gpus or widest_gpu > capacity.node_gpus:
        field = "gpus_per_learner" if spec.resources.gpus_per_learner else "learners"
        errors.append(
            {
                "loc": ["resources", field],
                "msg": f"a trial needs {gpus:g} GPUs ({widest_gpu:g} on one node); the "
                f"cluster has {capacity.gpus:g} GPUs (at most {capacity.node_gpus:g} on a node)",
            }
        )
    if cpus > capacity.cpus or widest_cpu > capacity.node_cpus:
        field = "env_runners" if spec.resources.env_runners is not None else "learners"
        errors.append(
            {
                "loc": ["resources", field],
                "msg": f"a trial needs {cpus:g} CPUs ({len(bundles)} Ray bundles); the cluster "
                f"has {capacity.cpus:g} CPUs (at most {capacity.node_cpus:g} on a node)",
            }
        )
    if errors:
        raise SpecError(errors)


def with_concurrency(
    spec: JobSpec, bundles: list[dict[str, float]], capacity: Capacity, quota: Quota
) -> JobSpec:
    """The spec with `resources.concurrent_trials` decided: as asked, else as many of its
    trials as fit side by side in the cluster and in the owner's quota (at least one)."""
    if spec.resources.concurrent_trials is not None:
        return spec
    cpus = sum(bundle.get("CPU", 0.0) for bundle in bundles)
    gpus = sum(bundle.get("GPU", 0.0) for bundle in bundles)
    limits = [spec.trials]
    for have, need in (
        (capacity.cpus, cpus),
        (capacity.gpus, gpus),
        (quota.cpus, cpus),
        (quota.gpus, gpus),
    ):
        if have is not None and need > 0:
            limits.append(math.floor(have / need + 1e-9))
    concurrent = max(1, min(limits))
    resources = spec.resources.model_copy(update={"concurrent_trials": concurrent})
    return spec.model_copy(update={"resources": resources})


def check_held_fits(spec: JobSpec, cpus: float, gpus: float, capacity: Capacity) -> None:
    """Refuse a job whose trials that run at once hold more than the whole cluster."""
    if cpus > capacity.cpus + 1e-9 or gpus > capacity.gpus + 1e-9:
        concurrent = spec.resources.concurrent_trials
        message = (
            f"{concurrent} trials at once hold {cpus:g} CPUs and {gpus:g} GPUs; the cluster has "
            f"{capacity.cpus:g} CPUs and {capacity.gpus:g} GPUs"
        )
        raise SpecError([{"loc": ["resources", "concurrent_trials"], "msg": message}])


def held_while_running(spec: JobSpec, bundles: list[dict[str, float]]) -> tuple[float, float]:
    """The CPUs and GPUs a job holds while it runs: its concurrent trials' bundles."""
    concurrent = spec.resources.concurrent_trials or 1
    cpus = sum(bundle.get("CPU", 0.0) for bundle in bundles)
    gpus = sum(bundle.get("GPU", 0.0) for bundle in bundles)
    return cpus * concurrent, gpus * concurrent


def check_quota(spec: JobSpec, cpus: float, gpus: float, quota: Quota) -> None:
    """Refuse a job that could never start under its owner's quota."""
    errors = []
    if quota.cpus is not None and cpus > quota.cpus:
        errors.append(f"it holds {cpus:g} CPUs when running; your quota is {quota.cpus:g}")
    if quota.gpus is not None and gpus > quota.gpus:
        errors.append(f"it holds {gpus:g} GPUs when running; your quota is {quota.gpus:g}")
    if quota.running_jobs == 0:
        errors.append("your quota allows no running job")
    if errors:
        raise SpecError([{"loc": ["resources"], "msg": msg} for msg in errors])


class PriorityRefusedError(Exception):
    """An owner asked for a priority their quota does not grant (HTTP 403, naming `priority`)."""


def check_priority(owner: str, priority: str, high_jobs_now: int, quota: Quota) -> None:
    """Refuse `high` beyond the owner's `high_jobs` quota (counting this job).

    Args:
        owner: who asks.
        priority: the priority asked for.
        high_jobs_now: the owner's other jobs at high priority, queued or running.
        quota: the owner's quota.
    """
    if priority != "high" or quota.allows_high(high_jobs_now + 1):
        return
    if not quota.high_jobs:
        why = f"owner {owner} may not use high priority"
    else:
        why = f"owner {owner} already has {high_jobs_now} of {quota.high_jobs} high-priority jobs"
    raise PriorityRefusedError(
        f'{why} (an operator grants it: RLDOJO_QUOTAS=\'{{"{owner}": {{"high_jobs": N}}}}\')'
    )


@dataclass(frozen=True)
class Admitted:
    """A spec that passed admission: compiled (with its concurrency decided) and what it holds
    when running."""

    compiled: CompiledJob
    cpus: float
    gpus: float

    @property
    def spec(self) -> JobSpec:
        return self.compiled.spec

    @property
    def resolved_config(self) -> dict[str, Any]:
        return self.compiled.resolved_config

    @property
    def trial_resources(self) -> list[dict[str, float]]:
        return self.compiled.trial_resources
