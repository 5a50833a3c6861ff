"""The rendered nftables ruleset, loaded by real nft into network namespaces that stand in for hosts.

One LAN (198.18.10.0/25, a bridge in its own namespace): node `shared` (.1) runs the data services,
node `app` (.2) is in the fleet, node `new` (.3) joins it later, `outside` (.99) never does. On `shared`,
a "container" namespace behind a bridge named docker0 (198.18.10.128/28) serves a port published the
way Docker publishes one: DNAT in prerouting at priority dstnat, then forwarded.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.render.firewall import (NodeFirewall, apply_script, confirm_script, remove_script,
                                        render_nftables, ruleset_id)
from realservices import require_binary, wait_until

SHARED, APP, NEW, OUTSIDE = "198.18.10.1", "198.18.10.2", "198.18.10.3", "198.18.10.99"
CONTAINER = "198.18.10.130"
SSH = 22
DATA_PORTS = (5432, 6379, 6333, 9000)
REPLICA_PORT = 3000      # a replica's host port, listened on by the host itself
PUBLISHED_PORT = 3001    # a replica's host port published by "Docker" (DNAT to the container's 8080)
FLEET_ONLY = (*DATA_PORTS, REPLICA_PORT, PUBLISHED_PORT)

_LISTENER = """
import socket, sys, threading
socks = []
for port in map(int, sys.argv[1:]):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64); socks.append(s)
def serve(s):
    while True:
        c, _ = s.accept(); c.sendall(b"ok"); c.close()
for s in socks:
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""

_PROBE = """
import json, socket, sys
host, ports = sys.argv[1], map(int, sys.argv[2:])
out = {}
for port in ports:
    try:
        with socket.create_connection((host, port), timeout=1.5) as c:
            out[port] = c.recv(2) == b"ok"
    except OSError:
        out[port] = False
print(json.dumps(out))
"""


def netns(ns: str, *argv: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True, **kw)


class Lan:
    """The namespaces of one test; names start with fw- and carry the test process's id."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.ns = {name: f"fw-{tag}-{name}" for name in ("sw", "shared", "app", "new", "outside", "ctr")}
        self.created: list[str] = []

    def up(self) -> None:
        sw = self.ns["sw"]
        for name in self.ns.values():
            subprocess.run(["ip", "netns", "add", name], check=True)
            self.created.append(name)
        ip = lambda ns, *a: subprocess.run(["ip", "-n", ns, *a], check=True)  # noqa: E731
        ip(sw, "link", "add", "br0", "type", "bridge")
        ip(sw, "link", "set", "br0", "up")
        for i, (host, address) in enumerate([("shared", SHARED), ("app", APP), ("new", NEW), ("outside", OUTSIDE)]):
            ip(sw, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0", "netns", self.ns[host])
            ip(sw, "link", "set", f"p{i}", "master", "br0", "up")
            ip(self.ns[host], "addr", "add", f"{address}/25", "dev", "eth0")
            ip(self.ns[host], "link", "set", "eth0", "up")
            ip(self.ns[host], "link", "set", "lo", "up")
        shared, ctr = self.ns["shared"], self.ns["ctr"]
        ip(shared, "link", "add", "docker0", "type", "bridge")
        ip(shared, "addr", "add", "198.18.10.129/28", "dev", "docker0")
        ip(shared, "link", "set", "docker0", "up")
        ip(shared, "link", "add", "vethc", "type", "veth", "peer", "name", "eth0", "netns", ctr)
        ip(shared, "link", "set", "vethc", "master", "docker0", "up")
        ip(ctr, "addr", "add", f"{CONTAINER}/28", "dev", "eth0")
        ip(ctr, "link", "set", "eth0", "up")
        ip(ctr, "link", "set", "lo", "up")
        ip(ctr, "route", "add", "default", "via", "198.18.10.129")
        netns(shared, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # What Docker does for `-p 3001:8080` (its iptables nat rules hook at the same priority).
        netns(shared, "nft", "-f", "-", input=f"""
table ip docker_standin {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        tcp dport {PUBLISHED_PORT} dnat to {CONTAINER}:8080
    }}
    chain output {{
        type nat hook output priority -100; policy accept;
        fib daddr type local tcp dport {PUBLISHED_PORT} dnat to {CONTAINER}:8080
    }}
}}""")

    def down(self) -> None:
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "del", name], check=False)

    def reachable(self, client: str, host: str, ports: tuple[int, ...]) -> dict[int, bool]:
        out = netns(self.ns[client], sys.executable, "-c", _PROBE, host, *map(str, ports)).stdout
        return {int(k): v for k, v in json.loads(out).items()}


@contextlib.contextmanager
def listening(ns: str, ports: tuple[int, ...]) -> Iterator[None]:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", _LISTENER, *map(str, ports)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def lan() -> Iterator[Lan]:
    require_binary("nft", "apt-get install nftables (bash .ci/run)")
    require_binary("ip")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    lan = Lan()
    try:
        lan.up()
        with listening(lan.ns["shared"], (SSH, *DATA_PORTS, REPLICA_PORT)), listening(lan.ns["ctr"], (8080,)):
            yield lan
    finally:
        lan.down()


class Node:
    """Applies rulesets to one namespace the way the deploy does, and undoes its rollback job afterwards."""

    def __init__(self, lan: Lan, name: str, state: Path) -> None:
        self.ns, self.state = lan.ns[name], state

    def apply(self, ruleset: str, rollback_after_s: int = 120) -> None:
        netns(self.ns, "sh", "-c", apply_script(ruleset, rollback_after_s, str(self.state)), input=ruleset)

    def confirm(self, ruleset: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns, "sh", "-c", confirm_script(ruleset, str(self.state))],
                              capture_output=True, text=True)

    def table(self) -> str:
        return subprocess.run(["ip", "netns", "exec", self.ns, "nft", "list", "table", "inet", "openwebui_fleet"],
                              capture_output=True, text=True).stdout

    def result(self, ruleset: str) -> str | None:
        f = self.state / f"result-{ruleset_id(ruleset)}"
        return f.read_text().strip() if f.exists() else None

    def rollback_timer_ends(self, ruleset: str) -> None:
        """End the pending rollback's wait now (instead of waiting it out): the job goes on to decide."""
        job = int((self.state / f"rollback-{ruleset_id(ruleset)}.pid").read_text())
        children = Path(f"/proc/{job}/task/{job}/children")
        wait_until(lambda: children.read_text().split() != [], 15, "the rollback job's sleep to start")
        for child in children.read_text().split():
            os.kill(int(child), 15)  # its sleep

    def stop_rollback_jobs(self) -> None:
        for pid_file in self.state.glob("rollback-*.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pid_file.read_text()), 9)


@pytest.fixture
def shared(lan: Lan, tmp_path: Path) -> Iterator[Node]:
    node = Node(lan, "shared", tmp_path / "state")
    try:
        yield node
    finally:
        node.stop_rollback_jobs()


def shared_rules(*fleet: str) -> str:
    return render_nftables(NodeFirewall("shared", fleet, FLEET_ONLY, (SSH, 80, 443)))


def test_only_fleet_nodes_reach_data_and_replica_ports_and_ssh_stays_open(lan: Lan, shared: Node) -> None:
    every = (SSH, *FLEET_ONLY)
    before = lan.reachable("outside", SHARED, every)
    rules = shared_rules(SHARED, APP)
    shared.apply(rules)
    confirmed = shared.confirm(rules)
    outside, app = lan.reachable("outside", SHARED, every), lan.reachable("app", SHARED, every)
    local = lan.reachable("shared", SHARED, every)
    from_container = lan.reachable("ctr", SHARED, (*DATA_PORTS, REPLICA_PORT))
    assert before == dict.fromkeys(every, True)  # the stand-ins answer, published port included
    assert confirmed.returncode == 0, confirmed.stderr
    assert outside == {SSH: True, **dict.fromkeys(FLEET_ONLY, False)}
    assert app == dict.fromkeys(every, True)
    assert local == dict.fromkeys(every, True)
    assert from_container == dict.fromkeys((*DATA_PORTS, REPLICA_PORT), True)


def test_adding_a_node_opens_the_fleet_ports_to_it_and_changes_only_the_address_set(lan: Lan, shared: Node) -> None:
    two, three = shared_rules(SHARED, APP), shared_rules(SHARED, APP, NEW)
    shared.apply(two)
    assert shared.confirm(two).returncode == 0
    before = lan.reachable("new", SHARED, FLEET_ONLY)
    shared.apply(three)
    assert shared.confirm(three).returncode == 0
    after = lan.reachable("new", SHARED, FLEET_ONLY)
    outside = lan.reachable("outside", SHARED, FLEET_ONLY)
    changed = [(a, b) for a, b in zip(two.splitlines(), three.splitlines()) if a != b]
    assert before == dict.fromkeys(FLEET_ONLY, False)
    assert after == dict.fromkeys(FLEET_ONLY, True)
    assert outside == dict.fromkeys(FLEET_ONLY, False)
    assert changed == [("        elements = { 198.18.10.1, 198.18.10.2 }",
                        "        elements = { 198.18.10.1, 198.18.10.2, 198.18.10.3 }")]


def test_applying_the_same_rules_again_changes_nothing(lan: Lan, shared: Node) -> None:
    rules = shared_rules(SHARED, APP)
    shared.apply(rules)
    assert shared.confirm(rules).returncode == 0
    once = subprocess.run(["ip", "netns", "exec", lan.ns["shared"], "nft", "list", "ruleset"],
                          capture_output=True, text=True, check=True).stdout
    shared.apply(rules)
    assert shared.confirm(rules).returncode == 0
    twice = subprocess.run(["ip", "netns", "exec", lan.ns["shared"], "nft", "list", "ruleset"],
                           capture_output=True, text=True, check=True).stdout
    assert once == twice
    assert once.count("table inet openwebui_fleet") == 1
    assert "table ip docker_standin" in twice  # other tables are left alone


def test_unconfirmed_rules_roll_back_to_the_last_confirmed_ones_by_themselves(lan: Lan, shared: Node) -> None:
    good, locked_out = shared_rules(SHARED, APP), shared_rules(SHARED)
    shared.apply(good)
    assert shared.confirm(good).returncode == 0
    confirmed_table = shared.table()
    shared.apply(locked_out)  # say it cut the session: nobody confirms
    app_while_pending = lan.reachable("app", SHARED, DATA_PORTS)
    shared.rollback_timer_ends(locked_out)
    wait_until(lambda: shared.result(locked_out) is not None, 30, "the rollback job to decide")
    late_confirm = shared.confirm(locked_out)
    assert app_while_pending == dict.fromkeys(DATA_PORTS, False)
    assert shared.result(locked_out) == "rolled-back"
    assert shared.table() == confirmed_table
    assert lan.reachable("app", SHARED, DATA_PORTS) == dict.fromkeys(DATA_PORTS, True)
    assert late_confirm.returncode == 1 and "no longer pending" in late_confirm.stderr


def test_a_first_unconfirmed_apply_leaves_no_table_and_a_confirmed_one_is_kept(lan: Lan, shared: Node) -> None:
    rules = shared_rules(SHARED, APP)
    shared.apply(rules)
    shared.rollback_timer_ends(rules)
    wait_until(lambda: shared.result(rules) is not None, 30, "the rollback job to decide")
    rolled_back = (shared.result(rules), shared.table())
    shared.apply(rules)
    assert shared.confirm(rules).returncode == 0
    shared.rollback_timer_ends(rules)
    wait_until(lambda: shared.result(rules) is not None, 30, "the rollback job to decide")
    assert rolled_back == ("rolled-back", "")
    assert shared.result(rules) == "kept" and "198.18.10.2" in shared.table()
    assert lan.reachable("outside", SHARED, (SSH, 5432)) == {SSH: True, 5432: False}


def test_removing_takes_away_only_this_programs_table(lan: Lan, shared: Node) -> None:
    rules = shared_rules(SHARED, APP)
    shared.apply(rules)
    assert shared.confirm(rules).returncode == 0
    netns(lan.ns["shared"], "sh", "-c", remove_script())
    netns(lan.ns["shared"], "sh", "-c", remove_script())  # again: nothing left to remove, still fine
    ruleset = netns(lan.ns["shared"], "nft", "list", "ruleset").stdout
    assert "openwebui_fleet" not in ruleset and "docker_standin" in ruleset
    assert lan.reachable("outside", SHARED, DATA_PORTS) == dict.fromkeys(DATA_PORTS, True)


# --- pure rendering ---------------------------------------------------------------------------

def test_a_port_both_public_and_fleet_only_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"\[22\]"):
        render_nftables(NodeFirewall("n", ("10.0.0.1",), (22, 5432), (22,)))


def test_sources_are_split_by_family_and_sorted_and_cidrs_kept() -> None:
    rules = render_nftables(NodeFirewall("n", ("10.0.0.2", "2001:db8::1", "10.0.0.1", "192.0.2.0/24"), (5432,), (22,)))
    assert "elements = { 10.0.0.1, 10.0.0.2, 192.0.2.0/24 }" in rules
    assert "elements = { 2001:db8::1 }" in rules


def test_rendered_rules_pass_nft_check_with_no_fleet_only_ports() -> None:
    nft = require_binary("nft", "apt-get install nftables (bash .ci/run)")
    rules = render_nftables(NodeFirewall("lb", ("10.0.0.1",), (), (22, 80, 443)))
    if os.geteuid() != 0:
        pytest.skip("nft -c needs root")
    subprocess.run([nft, "-c", "-f", "-"], input=rules, text=True, check=True, capture_output=True)
