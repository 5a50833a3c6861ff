"""nftables on a node's host, over SSH: only the fleet reaches its data services and replicas."""
from __future__ import annotations

import shlex

import pulumi

from components.config import FirewallSpec
from components.node import FleetNode
from components.render.firewall import (NodeFirewall, apply_script, confirm_script, remove_script,
                                        render_nftables, ruleset_id)


class HostFirewall(pulumi.ComponentResource):
    """Applies the node's ruleset atomically, then confirms it over a new SSH connection; rules that
    lock that connection out are put back by the node itself after `rollbackAfterS`."""

    def __init__(self, name: str, rules: NodeFirewall, spec: FirewallSpec, node: FleetNode, ssh_user: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("openwebui-fleet:index:HostFirewall", name, None, opts)
        from pulumi_command import remote  # here: only stacks with a firewall load the package
        assert node.ssh is not None  # validation: firewall.enabled needs every node's host
        self.ruleset = render_nftables(rules)
        rid = ruleset_id(self.ruleset)
        as_root = "sh -c" if ssh_user == "root" else "sudo -n sh -c"
        apply = f"{as_root} {shlex.quote(apply_script(self.ruleset, spec.rollback_after_s))}"
        confirm = f"{as_root} {shlex.quote(confirm_script(self.ruleset))}"
        # No triggers: a new ruleset is an update (runs `update`), never a replacement, whose delete
        # of the old command would take the new table away.
        self.apply = remote.Command(
            f"{name}-apply", connection=node.ssh, create=apply, update=apply, stdin=self.ruleset,
            delete=f"{as_root} {shlex.quote(remove_script())}",
            opts=pulumi.ResourceOptions(parent=self))
        # Its own command, so its own SSH connection: it only gets through if the new rules let SSH in.
        self.confirm = remote.Command(
            f"{name}-confirm", connection=node.ssh, create=confirm, update=confirm,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.apply]))
        self.register_outputs({"rulesetId": rid})
