"""The host firewall as the program declares it: one HostFirewall per node, its rules from the node list,
and adding a node changes exactly the address set on every node (and creates the new node's)."""
from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from plan.diff import diff_evaluations, render_diff
from plan.engine import Evaluation, evaluate, stack_config

NODE_ADDRESSES = {"shared": "10.0.5.24", "master": "192.168.1.14", "slave1": "192.168.1.21"}  # Pulumi.prod.yaml


def with_firewall() -> dict[str, Any]:
    config = copy.deepcopy(stack_config("prod"))
    config["firewall"] = {"enabled": True}
    return config


@pytest.fixture(scope="module")
def before() -> Evaluation:
    return evaluate("prod", with_firewall())


@pytest.fixture(scope="module")
def grown() -> Evaluation:
    config = with_firewall()
    config["nodes"]["slave2"] = {"host": "192.168.1.22"}  # a node without replicas yet
    return evaluate("prod", config)


def commands(ev: Evaluation) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs for r in ev.resources if r.type == "command:remote:Command" and r.name.startswith("firewall-")}


def test_every_node_gets_its_ruleset_applied_then_confirmed(before: Evaluation) -> None:
    cmds = commands(before)
    assert set(cmds) == {f"firewall-{n}-{step}" for n in NODE_ADDRESSES for step in ("apply", "confirm")}
    rules = before.outputs["firewallRules"]
    for node, address in NODE_ADDRESSES.items():
        assert cmds[f"firewall-{node}-apply"]["stdin"] == rules[node]
        assert cmds[f"firewall-{node}-apply"]["connection"]["host"] == address
        assert "nft -f" in cmds[f"firewall-{node}-apply"]["create"]
        assert "nft delete table inet openwebui_fleet" in cmds[f"firewall-{node}-apply"]["delete"]
        assert "confirmed" in cmds[f"firewall-{node}-confirm"]["create"]
        assert "elements = { 10.0.5.24, 192.168.1.14, 192.168.1.21 }" in rules[node]


def test_each_node_restricts_what_it_publishes_and_leaves_ssh_and_the_lb_open(before: Evaluation) -> None:
    rules = before.outputs["firewallRules"]
    config = stack_config("prod")
    lb_ports = {80} | ({443} if config["loadBalancer"].get("tls") is not None else set())
    chat_port = config["apps"]["chat"].get("port", 3000)

    def elements(node: str, name: str) -> list[int]:
        found = re.search(rf"set {name} {{\s+type inet_service\s+elements = {{ ([^}}]*) }}", rules[node])
        return [int(p) for p in found[1].split(", ")] if found else []

    assert elements("shared", "fleet_only_tcp") == [5432, 6333, 6379, 9000]
    assert elements("shared", "public_tcp") == [22]
    assert chat_port in elements("master", "fleet_only_tcp") and 5432 not in elements("master", "fleet_only_tcp")
    assert elements("master", "public_tcp") == sorted({22} | lb_ports)


def test_adding_a_node_shows_exactly_the_address_set_change_in_the_plan_diff(before: Evaluation,
                                                                          grown: Evaluation) -> None:
    diff = diff_evaluations(before, grown, "before", "grown")
    text = render_diff(diff)
    changed = [line for line in diff.firewall_diff.splitlines()
               if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
    old_set = "        elements = { 10.0.5.24, 192.168.1.14, 192.168.1.21 }"
    new_set = "        elements = { 10.0.5.24, 192.168.1.14, 192.168.1.21, 192.168.1.22 }"
    assert diff.names("create") == {"slave2", "slave2-network", "firewall-slave2-apply", "firewall-slave2-confirm"}
    # Updated in place, never replaced: a replacement's delete would take the new table away again.
    assert diff.names("update") == {f"firewall-{n}-{step}" for n in NODE_ADDRESSES for step in ("apply", "confirm")}
    assert diff.names("replace") == set()
    assert diff.names("delete") == set() and diff.nginx_diff == ""
    # Per existing node one line out, one line in; the new node's whole ruleset is new.
    assert changed.count("-" + old_set) == 3 and changed.count("+" + new_set) == 4
    assert [line for line in changed if line.startswith("-")] == ["-" + old_set] * 3
    assert "firewallRules: \n" in text
