"""The fleet resolved once, as plain data: nodes, shared endpoints per node, replicas, upstreams.

Pure: no Pulumi resources. Components, the nginx renderer input, the backup job's env and the
stack outputs each read their slice of a `Topology`; nothing here is worked out twice.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from components.config import FleetSpec
from components.config.postgres_settings import effective_settings
from components.endpoints import (INTERNAL_PORTS, OBJECT_STORAGE, OLLAMA, OPENWEBUI_PORT, POSTGRES, QDRANT,
                                  REDIS, Endpoint, SharedEndpoints)
from components.render.firewall import NodeFirewall


@dataclass(frozen=True)
class SshTarget:
    """Where commands on a node's host run (a native nginx)."""
    host: str
    port: int
    user: str
    host_key: str | None = None      # checked by pulumi-command (required where commands run)


@dataclass(frozen=True)
class NodeTopology:
    name: str
    docker_url: str                  # the Docker provider's host: ssh://user@host[:port] or dockerHost
    ssh_opts: tuple[str, ...]        # extra ssh options for the provider; () for a dockerHost node
    address: str                     # the IP services are published on and reached at from other nodes
    ssh: SshTarget | None            # None: no host to log in to (a local engine)


@dataclass(frozen=True)
class Replica:
    """One Open WebUI container: app, node and ordinal make its stable name."""
    app: str
    node: str
    ordinal: int
    name: str                        # <app>-<node>-<ordinal>: the Pulumi resource name
    container_name: str
    host_port: int
    address: str                     # its node's address (the published port listens there)
    migrates: bool


@dataclass(frozen=True)
class AppTopology:
    name: str
    hostname: str
    public_url: str
    replicas: tuple[Replica, ...]    # sorted by node, then ordinal
    upstreams: tuple[Endpoint, ...]  # the replicas as the load balancer reaches them, in that order
    database_node: str               # where psql bootstraps its role and database: the shared services' node
    env: Mapping[str, str]           # the operator's Open WebUI variables: commonEnv, then the app's env

    @property
    def migrator(self) -> Replica:
        return next(r for r in self.replicas if r.migrates)


@dataclass(frozen=True)
class Topology:
    nodes: Mapping[str, NodeTopology]
    shared_node: str                          # runs the shared services (or the init steps for external ones)
    endpoints: Mapping[str, SharedEndpoints]  # the shared services as each node's containers reach them
    outside: SharedEndpoints                  # ... and from outside any container (outputs, a person)
    apps: Mapping[str, AppTopology]
    backup_apps: tuple[str, ...]              # what the backup job dumps: every app, sorted
    postgres_settings: Mapping[str, str]      # the fleet's PostgreSQL's server settings (mode docker)
    firewalls: Mapping[str, NodeFirewall]     # per node, when firewall.enabled; else empty
    backup_bucket_on_fleet_storage: str | None  # the backup bucket, when it lives in the fleet's own MinIO


def resolve(fleet: FleetSpec) -> Topology:
    """The fleet as placed on its nodes; `fleet` is already validated."""
    nodes = {name: _node(fleet, name) for name in fleet.nodes}
    apps = {name: _app(fleet, nodes, name) for name in fleet.apps}
    return Topology(
        nodes=nodes, shared_node=fleet.shared_services.node,
        endpoints={name: shared_endpoints(fleet, name) for name in fleet.nodes},
        outside=shared_endpoints(fleet, None), apps=apps, backup_apps=tuple(sorted(fleet.apps)),
        postgres_settings=effective_settings(fleet.shared_services.postgres.settings,
                                             fleet.nodes[fleet.shared_services.node].memory_mb),
        firewalls=_firewalls(fleet, nodes, apps) if fleet.firewall.enabled else {},
        backup_bucket_on_fleet_storage=_fleet_backup_bucket(fleet))


def _firewalls(fleet: FleetSpec, nodes: Mapping[str, NodeTopology],
               apps: Mapping[str, AppTopology]) -> dict[str, NodeFirewall]:
    """Each node's data and replica ports open to every node of the fleet (and allowFrom) only;
    SSH and the load balancer's ports open to all."""
    sources = tuple(sorted({n.address for n in nodes.values()})) + fleet.firewall.allow_from
    shared, lb = fleet.shared_services, fleet.load_balancer
    firewalls = {}
    for name in nodes:
        services = shared.published_ports() if shared.mode == "docker" and shared.node == name else []
        replicas = [r.host_port for app in apps.values() for r in app.replicas if r.node == name]
        public = [p for p, _ in lb.published_ports()] if lb is not None and lb.node == name else []
        firewalls[name] = NodeFirewall(name, sources, tuple(sorted({p for p, _ in services} | set(replicas))),
                                       tuple(sorted({fleet.nodes[name].ssh_port, *public})))
    return firewalls


def _fleet_backup_bucket(fleet: FleetSpec) -> str | None:
    """Provider 'minio' in docker mode: the fleet's own MinIO, unless backupAccessKeyId points the job at
    another one (then the grant names a bucket the fleet's MinIO does not have, which gives nothing)."""
    backup = fleet.backup
    if backup is None or backup.provider != "minio" or fleet.shared_services.mode != "docker":
        return None
    return backup.bucket


def _node(fleet: FleetSpec, name: str) -> NodeTopology:
    node = fleet.nodes[name]
    user = node.ssh_user or fleet.ssh_user
    port = "" if node.ssh_port == 22 else f":{node.ssh_port}"
    return NodeTopology(
        name=name,
        docker_url=node.docker_host or f"ssh://{user}@{node.host}{port}",
        ssh_opts=tuple(fleet.ssh_opts) if node.docker_host is None else (),
        address=node.bind_address,
        # Validation requires a user for every node Docker is reached over SSH; a dockerHost node
        # that also gives `host` may leave it unset, and then ssh logs in as root.
        ssh=None if node.host is None else SshTarget(node.host, node.ssh_port, user or "root", node.ssh_host_key))


def shared_endpoints(fleet: FleetSpec, from_node: str | None) -> SharedEndpoints:
    """`from_node=None` means from outside any container (a person, the backup bucket's client)."""
    shared = fleet.shared_services
    if shared.external is not None:
        ext = shared.external
        return SharedEndpoints(
            postgres=Endpoint(ext.postgres.host, ext.postgres.port),
            postgres_admin_user=ext.postgres.admin_user,
            redis=Endpoint(ext.redis.host, ext.redis.port),
            qdrant=Endpoint(ext.qdrant.host, ext.qdrant.port),
            object_storage_url=ext.object_storage.endpoint.rstrip("/"),
            bucket=ext.object_storage.bucket, region=ext.object_storage.region, ollama=None)

    def reach(container: str, published: int) -> Endpoint:
        if from_node == shared.node:
            return Endpoint(container, INTERNAL_PORTS[container])
        return Endpoint(fleet.nodes[shared.node].bind_address, published)

    storage = reach(OBJECT_STORAGE, shared.object_storage.port)
    return SharedEndpoints(
        postgres=reach(POSTGRES, shared.postgres.port),
        postgres_admin_user=shared.postgres.admin_user,
        redis=reach(REDIS, shared.redis.port),
        qdrant=reach(QDRANT, shared.qdrant.port),
        object_storage_url=f"{'https' if shared.tls else 'http'}://{storage}",
        bucket=shared.object_storage.bucket, region=shared.object_storage.region,
        # Ollama has no authentication, so it is reachable on the shared node's own network only.
        ollama=Endpoint(OLLAMA, INTERNAL_PORTS[OLLAMA]) if shared.ollama.enabled and from_node == shared.node
        else None,
        tls=shared.tls)


def public_url(fleet: FleetSpec, app: str) -> str:
    lb = fleet.load_balancer
    scheme = "https" if lb is not None and lb.tls is not None else "http"
    default_port = {"http": 80, "https": 443}[scheme]
    port = default_port if lb is None else (lb.https_port if lb.tls is not None else lb.http_port)
    suffix = "" if port == default_port else f":{port}"
    return f"{scheme}://{fleet.apps[app].hostname}{suffix}"


def _app(fleet: FleetSpec, nodes: Mapping[str, NodeTopology], name: str) -> AppTopology:
    spec = fleet.apps[name]
    replicas = tuple(
        Replica(app=name, node=node, ordinal=n, name=f"{name}-{node}-{n}",
                container_name=f"openwebui-{name}-{node}-{n}", host_port=spec.host_port(n),
                address=nodes[node].address, migrates=(node == spec.migrating_node and n == 1))
        for node in sorted(spec.replicas) for n in range(1, spec.replicas[node] + 1))
    lb = fleet.load_balancer
    # nginx in a container on the replica's node reaches it by name; from a host, at its published port.
    seen_from = lb.node if lb is not None and lb.mode == "docker" else None
    upstreams = tuple(Endpoint(r.container_name, OPENWEBUI_PORT) if r.node == seen_from
                      else Endpoint(r.address, r.host_port) for r in replicas)
    return AppTopology(name=name, hostname=spec.hostname, public_url=public_url(fleet, name),
                       replicas=replicas, upstreams=upstreams, database_node=fleet.shared_services.node,
                       env={**fleet.common_env, **spec.env})
