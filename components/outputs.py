"""Stack outputs a person reads: URLs, replicas and endpoints, never credentials."""
from __future__ import annotations

from typing import Any

import pulumi

from components.config import BackupSpec, SharedServicesSpec
from components.topology import AppTopology, Topology


def app_urls(topology: Topology) -> dict[str, str]:
    """App name → the URL people open: the short answer to "where is it"."""
    return {name: app.public_url for name, app in topology.apps.items()}


def lb_output(nginx_conf: pulumi.Output[str]) -> dict[str, Any]:
    """The LB's details, nested so its long nginx.conf stays out of the way of the other outputs."""
    return {"nginxConf": nginx_conf}


def app_output(app: AppTopology) -> dict[str, Any]:
    return {"url": app.public_url,
            "replicas": [{"name": r.name, "node": r.node, "address": r.address, "port": r.host_port,
                          "migrates": r.migrates} for r in app.replicas]}


def shared_services_output(spec: SharedServicesSpec, topology: Topology) -> dict[str, Any]:
    """Endpoints as seen from outside the shared node (no credentials)."""
    ends = topology.outside
    result = {"mode": spec.mode, "node": topology.shared_node,
              "postgres": str(ends.postgres), "redis": str(ends.redis), "qdrant": str(ends.qdrant),
              "objectStorage": ends.object_storage_url, "bucket": ends.bucket}
    if ends.ollama is not None:
        result["ollama"] = str(ends.ollama)
    return result


def nodes_output(topology: Topology) -> dict[str, Any]:
    return {name: {"address": node.address} for name, node in topology.nodes.items()}


def backup_output(spec: BackupSpec) -> dict[str, Any]:
    return {"name": spec.bucket, "endpoint": spec.endpoint or "aws", "schedule": spec.schedule}
