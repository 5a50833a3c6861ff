"""`nodes`: the Docker engines the fleet runs on."""

import ipaddress
import re

from typing import Annotated, Self

from pydantic import Field, Strict, model_validator

from components.config.types import BindAddress, DockerHost, Host, Invalid, Model, Port, SshHostKey, SshUser


class NodeSpec(Model):
    """A Docker engine: reached over SSH at `host`, or at `dockerHost` (e.g. the local socket)."""
    host: Host | None = None
    address: BindAddress | None = None
    docker_host: DockerHost | None = None
    ssh_user: SshUser | None = None
    ssh_port: Port = 22
    # What the node offers; the replicas' limits placed on it must fit (components/config/budgets.py).
    memory_mb: Annotated[int, Strict(), Field(ge=256)] | None = None
    cpus: Annotated[float, Field(gt=0, le=1024)] | None = None
    # Services are published on this node's address: an internet-routable one needs saying so.
    public_address: bool = False
    # The host key pulumi-command's SSH connections check (the native load balancer's commands).
    ssh_host_key: SshHostKey | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        if self.host is None and self.docker_host is None:
            raise ValueError("give 'host' (reached over SSH) or 'dockerHost' (e.g. unix:///var/run/docker.sock)")
        if self.address is None and not _is_ip(self.host):
            raise Invalid("address", f"required because host '{self.host}' is a name, not an IP: give the IP "
                          "this node publishes services on (e.g. 10.0.5.24)" if self.host else
                          f"required with dockerHost '{self.docker_host}': give the IP this node publishes "
                          "services on (127.0.0.1 for a local engine)")
        published = ipaddress.ip_address(self.bind_address)
        if published.version == 6:  # reached at address:port in nginx upstreams and database/Redis URLs
            raise Invalid("address" if self.address else "host",
                          f"'{published}' is an IPv6 address, and the fleet publishes its services on IPv4 "
                          "only: give the node's IPv4 address as address")
        if published.is_global and not self.public_address:
            raise Invalid("address" if self.address else "host",
                          f"'{published}' is a public address, and PostgreSQL, Redis, Qdrant, MinIO and the "
                          "replicas would be published on it: give the node's private address as address, or "
                          "set publicAddress: true if a firewall keeps the internet out")
        return self

    @property
    def engine(self) -> str:
        """Which Docker engine this is, whoever logs in to it (for spotting two nodes on one)."""
        if self.docker_host:
            return re.sub(r"^ssh://[^@/]*@", "ssh://", self.docker_host)
        return f"ssh://{self.host}" + ("" if self.ssh_port == 22 else f":{self.ssh_port}")

    @property
    def bind_address(self) -> str:
        """The IP services on this node are published on, and reached at from other nodes."""
        return self.address or str(ipaddress.ip_address(self.host or ""))

    def docker_url(self, ssh_user: str | None) -> str:
        if self.docker_host:
            return self.docker_host
        port = "" if self.ssh_port == 22 else f":{self.ssh_port}"
        return f"ssh://{self.ssh_user or ssh_user}@{self.host}{port}"


def _is_ip(value: str | None) -> bool:
    try:
        ipaddress.ip_address(value or "")
        return True
    except ValueError:
        return False
