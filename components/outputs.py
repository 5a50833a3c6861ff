"""Stack outputs a person reads: URLs, replicas and endpoints, never credentials."""
from __future__ import annotations

from typing import Any

from components.config import Fleet
from components.endpoints import Replica, shared_endpoints


def public_url(fleet: Fleet, app: str) -> str:
    lb = fleet.load_balancer
    scheme = "https" if lb is not None and lb.tls is not None else "http"
    default_port = {"http": 80, "https": 443}[scheme]
    port = default_port if lb is None else (lb.https_port if lb.tls is not None else lb.http_port)
    suffix = "" if port == default_port else f":{port}"
    return f"{scheme}://{fleet.apps[app].hostname}{suffix}"


def app_output(fleet: Fleet, app: str, replicas: list[Replica]) -> dict[str, Any]:
    return {"url": public_url(fleet, app),
            "replicas": [{"name": r.name, "node": r.node, "address": fleet.nodes[r.node].bind_address,
                          "port": r.host_port, "migrates": r.migrates} for r in replicas]}


def shared_services_output(fleet: Fleet) -> dict[str, Any]:
    """Endpoints as seen from outside the shared node (no credentials)."""
    ends = shared_endpoints(fleet, None)
    result = {"mode": fleet.shared_services.mode, "node": fleet.shared_services.node,
              "postgres": str(ends.postgres), "redis": str(ends.redis), "qdrant": str(ends.qdrant),
              "objectStorage": ends.object_storage_url, "bucket": ends.bucket}
    if ends.ollama is not None:
        result["ollama"] = str(ends.ollama)
    return result
