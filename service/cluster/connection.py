"""Talking to a Ray cluster's dashboard: the connection, whether it answers, what it holds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class RayConnection:
    """Where the dashboard is and the bearer token it wants (None when auth is off)."""

    address: str
    token: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def dashboard_alive(connection: RayConnection, timeout: float = 3.0) -> bool:
    """True when the dashboard answers `/api/version` with our token."""
    try:
        response = httpx.get(
            f"{connection.address}/api/version", headers=connection.headers, timeout=timeout
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def cluster_summary(connection: RayConnection, timeout: float = 5.0) -> dict[str, Any]:
    """Nodes and resources from the dashboard's state API."""
    response = httpx.get(
        f"{connection.address}/api/v0/nodes",
        params={"limit": 1000, "detail": "true"},
        headers=connection.headers,
        timeout=timeout,
    )
    response.raise_for_status()
    payload = response.json()
    nodes = payload.get("data", {}).get("result", {}).get("result", [])
    totals: dict[str, float] = {}
    found = []
    for node in nodes:
        resources = {
            k: float(v)
            for k, v in (node.get("resources_total") or {}).items()
            if not k.startswith("node:")
        }
        if node.get("state") == "ALIVE":
            for key, value in resources.items():
                totals[key] = totals.get(key, 0.0) + value
        found.append(
            {
                "id": str(node.get("node_id", "")),
                "ip": str(node.get("node_ip", "")),
                "state": str(node.get("state", "")),
                "is_head": bool(node.get("is_head_node", False)),
                "resources": resources,
            }
        )
    return {
        "address": connection.address,
        "nodes": found,
        "resources": totals,
        "resources_used": resources_used(connection, timeout),
    }


def resources_used(connection: RayConnection, timeout: float = 5.0) -> dict[str, float]:
    """Resources held by tasks and actors now, cluster-wide (the autoscaler monitor's report).

    Empty while the monitor has not reported yet (the first seconds of a head) or is absent.
    """
    try:
        response = httpx.get(
            f"{connection.address}/api/cluster_status",
            headers=connection.headers,
            timeout=timeout,
        )
        response.raise_for_status()
        status = response.json().get("data", {}).get("clusterStatus") or {}
    except (httpx.HTTPError, ValueError):
        return {}
    usage = (status.get("loadMetricsReport") or {}).get("usage") or {}
    return {
        _snake(key): float(pair[0])
        for key, pair in usage.items()
        if not key.startswith("node:") and isinstance(pair, list) and pair
    }


def _snake(key: str) -> str:
    """The dashboard camel-cases Ray's own resource names (objectStoreMemory); undo that."""
    if not key[:1].islower():
        return key  # CPU, GPU, custom resources
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()
