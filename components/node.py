"""A node: one Docker engine, the provider that reaches it and the network its containers share."""
from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

import pulumi
import pulumi_docker as docker

from components.topology import NodeTopology

if TYPE_CHECKING:
    from pulumi_command import remote


class FleetNode(pulumi.ComponentResource):
    """The Docker provider for one node (SSH or local socket) and the fleet network on it."""

    def __init__(self, name: str, node: NodeTopology, ssh_private_key: pulumi.Output[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("openwebui-fleet:index:FleetNode", name, None, opts)
        self.name = name
        self.address = node.address
        self._ssh_target, self._ssh_private_key = node.ssh, ssh_private_key
        self.docker = docker.Provider(name, host=node.docker_url, ssh_opts=list(node.ssh_opts) or None,
                                      opts=pulumi.ResourceOptions(parent=self))
        self._on_node = pulumi.ResourceOptions(parent=self, provider=self.docker)
        self.network = docker.Network(f"{name}-network", name="openwebui-fleet", driver="bridge",
                                      opts=self._on_node)
        self._images: dict[str, docker.RemoteImage] = {}
        self.register_outputs({"address": self.address})

    @functools.cached_property
    def ssh(self) -> remote.ConnectionArgs | None:
        """For commands on the host itself (an nginx installed there); None for a local engine."""
        if self._ssh_target is None:
            return None
        from pulumi_command import remote  # here: only stacks that run commands on a host load the package
        return remote.ConnectionArgs(host=self._ssh_target.host, port=self._ssh_target.port,
                                     user=self._ssh_target.user, private_key=self._ssh_private_key,
                                     host_key=self._ssh_target.host_key)

    def image(self, ref: str) -> docker.RemoteImage:
        """The image `ref` pulled on this node; one resource per image however many use it."""
        if ref not in self._images:
            slug = re.sub(r"[^a-z0-9.-]+", "-", ref.lower()).strip("-")
            # keep_locally: removing one app must not pull an image from under another app.
            self._images[ref] = docker.RemoteImage(f"{self.name}-{slug}", name=ref, keep_locally=True,
                                                   opts=self._on_node)
        return self._images[ref]

    def child_opts(self, parent: pulumi.Resource, **kwargs: object) -> pulumi.ResourceOptions:
        """Options for a resource of another component that lives on this node."""
        return pulumi.ResourceOptions(parent=parent, provider=self.docker, **kwargs)

    @property
    def networks(self) -> list[docker.ContainerNetworksAdvancedArgs]:
        return [docker.ContainerNetworksAdvancedArgs(name=self.network.name)]
