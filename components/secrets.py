"""Secrets the program generates when the stack config does not give them."""
from __future__ import annotations

import pulumi
import pulumi_random as random


def generated_secret(name: str, given: pulumi.Output[str] | None, parent: pulumi.Resource,
                     length: int = 32, renamed_from: str | None = None) -> pulumi.Output[str]:
    """The configured secret, or a generated one; secret either way (mocks don't mark it).

    `renamed_from`: the resource's earlier name, so a rename keeps the password (an alias)."""
    if given is not None:
        return pulumi.Output.secret(given)
    aliases = None if renamed_from is None else [pulumi.Alias(name=renamed_from)]
    password = random.RandomPassword(name, length=length, special=False,
                                     opts=pulumi.ResourceOptions(parent=parent, aliases=aliases))
    return pulumi.Output.secret(password.result)
