"""Admission: refuse at submit a job that could never get its resources on the cluster.

A trial asks Ray for bundles (its own process, its EnvRunners, its learners; RLlib's
`default_resource_request`). A job that asks more CPUs or GPUs per trial than the whole cluster
has, or a bundle larger than any one node, would sit waiting forever; it is refused with the
field that asked too much and what the cluster has. An autoscaling cluster is judged by the
maxima in the settings (`max_cluster_cpus`, `max_cluster_gpus`) instead of what runs now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
