"""The Ray cluster the service runs jobs on.

- `connection`: the dashboard's address and token, whether it answers, its nodes and resources.
- `head`: the embedded head a data directory owns (started, re-joined, stopped).
- `ray_jobs`: Ray Jobs (submit, status, logs, stop) and the commands jobs run on nodes.
"""

from service.cluster.connection import (
    RayConnection,
    cluster_summary,
    dashboard_alive,
    resources_used,
)
from service.cluster.head import (
    connect,
    ensure_embedded_head,
    read_embedded_head,
    stop_embedded_head,
)
from service.cluster.ray_jobs import (
    ClusterUnavailableError,
    RayJobs,
    RayState,
    executable,
    is_not_found,
    node_command,
    status_from_ray,
)

__all__ = [
    "ClusterUnavailableError",
    "RayConnection",
    "RayJobs",
    "RayState",
    "cluster_summary",
    "connect",
    "dashboard_alive",
    "ensure_embedded_head",
    "executable",
    "is_not_found",
    "node_command",
    "read_embedded_head",
    "resources_used",
    "status_from_ray",
    "stop_embedded_head",
]
