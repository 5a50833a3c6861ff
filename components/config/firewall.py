"""`firewall`: nftables on every node, letting only the fleet reach the data and replica ports."""

from typing import Annotated

from pydantic import Field, Strict

from components.config.load_balancer import Cidr
from components.config.types import Model


class FirewallSpec(Model):
    enabled: bool = False
    # Further sources that may reach the fleet-only ports, e.g. an admin VPN.
    allow_from: tuple[Cidr, ...] = ()
    # Rules that cut the deploy's own SSH access are put back after this long.
    rollback_after_s: Annotated[int, Strict(), Field(ge=30, le=3600)] = 120
