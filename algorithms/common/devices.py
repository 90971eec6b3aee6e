"""Where a learner runs: on a GPU when the cluster has one.

Kept apart from the configs so that a config stays plain data (a number of GPUs, never "auto")
and the registry imports neither Ray nor torch; the service asks once, when it builds a job's
config (`service.compiler.build_config`, with the cluster's GPUs).
"""

from __future__ import annotations


def learner_gpus(cluster_resources: dict[str, float] | None = None) -> int:
    """1 GPU per learner when the cluster has a whole one, else 0 (CPU learners, same code path).

    Args:
        cluster_resources: `ray.cluster_resources()`; read from Ray (or, before Ray starts,
            from this machine's CUDA devices) when None.

    Example:
        >>> learner_gpus({"CPU": 16.0, "GPU": 1.0}), learner_gpus({"CPU": 2.0, "GPU": 0.5})
        (1, 0)
    """
    if cluster_resources is None:
        import ray

        if ray.is_initialized():
            cluster_resources = ray.cluster_resources()
        else:
            import torch

            cluster_resources = {"GPU": float(torch.cuda.device_count())}
    return 1 if cluster_resources.get("GPU", 0) >= 1 else 0
