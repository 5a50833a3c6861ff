"""`nodes`: the Docker engines the fleet runs on."""
from __future__ import annotations

import ipaddress
import re

from pydantic import model_validator

from components.config.types import BindAddress, Host, Invalid, Model, Port


class NodeSpec(Model):
    """A Docker engine: reached over SSH at `host`, or at `dockerHost` (e.g. the local socket)."""
    host: Host | None = None
    address: BindAddress | None = None
    docker_host: str | None = None
    ssh_user: str | None = None
    ssh_port: Port = 22

    @model_validator(mode="after")
    def _reachable(self) -> NodeSpec:
        if self.host is None and self.docker_host is None:
            raise ValueError("give 'host' (reached over SSH) or 'dockerHost' (e.g. unix:///var/run/docker.sock)")
        if self.docker_host is not None and not re.match(r"^(unix|ssh|tcp)://", self.docker_host):
            raise Invalid("dockerHost", f"'{self.docker_host}' must start with unix://, ssh:// or tcp://")
        if self.address is None and not _is_ip(self.host):
            raise Invalid("address", f"required because host '{self.host}' is a name, not an IP: give the IP "
                          "this node publishes services on (e.g. 10.0.5.24)" if self.host else
                          f"required with dockerHost '{self.docker_host}': give the IP this node publishes "
                          "services on (127.0.0.1 for a local engine)")
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
