"""Secrets the program generates when the stack config does not give them."""
from __future__ import annotations

import pulumi
import pulumi_random as random


def generated_secret(name: str, given: pulumi.Output[str] | None, parent: pulumi.Resource,
                     length: int = 32) -> pulumi.Output[str]:
    """The configured secret, or a generated one; secret either way (mocks don't mark it)."""
    if given is not None:
        return pulumi.Output.secret(given)
    password = random.RandomPassword(name, length=length, special=False,
                                     opts=pulumi.ResourceOptions(parent=parent))
    return pulumi.Output.secret(password.result)
