"""Resource options a component hands on to its children."""
from __future__ import annotations

from collections.abc import Sequence

import pulumi

DependsOn = pulumi.Input[Sequence[pulumi.Input[pulumi.Resource]]] | pulumi.Resource | None


def depends_on(opts: pulumi.ResourceOptions | None) -> DependsOn:
    """What a component was told to wait for; Pulumi does not make its children wait too, so they pass it on."""
    return None if opts is None else opts.depends_on
