"""Hosts on one machine: a network namespace per node, joined by a bridge, as the fleet's nodes are by a LAN.

Docker's per-node network is modelled inside each node's namespace: every container gets its own
loopback address (127.0.1.N, reachable only on its node, as a container's address is), its name resolves
there through `/etc/netns/<ns>/hosts`, and each published port is a DNAT rule from the node's address to
the container's address and internal port (what Docker's port publishing does).
"""
from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

PREFIX = "rf-"
BRIDGE = "rfbr0"
# The machine itself is a client on the fleet's LAN; every address is in 198.18.0.0/24.
HOST_ADDRESS = "198.18.0.1"
PREFIX_LEN = 24
NETNS_ETC = Path("/etc/netns")


def _run(*argv: str, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, input=input_text)


def namespace(node: str) -> str:
    return f"{PREFIX}{node}"


def host_link(node: str) -> str:
    """The bridge side of a node's link (interface names are at most 15 characters)."""
    return f"{PREFIX}{node}"[:13] + "-h"


def in_ns(ns: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


def check_free(nodes: list[str]) -> None:
    """Refuse to start over a fleet that is still up (its state dir's `down` removes it)."""
    taken = [BRIDGE] if _run("ip", "link", "show", BRIDGE, check=False).returncode == 0 else []
    existing = _run("ip", "netns", "list").stdout.split()
    taken += [namespace(n) for n in nodes if namespace(n) in existing]
    if taken:
        raise RuntimeError(f"{', '.join(taken)} already exist: run `python -m tests.realfleet down --state DIR` "
                           "with the state dir of the fleet that is up")


def create_bridge() -> None:
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{HOST_ADDRESS}/{PREFIX_LEN}", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")


def create_node(node: str, address: str, hosts: dict[str, str]) -> str:
    """The node's namespace with `address` on its link to the bridge; `hosts` name → address."""
    ns = namespace(node)
    _run("ip", "netns", "add", ns)
    link = host_link(node)
    _run("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
    _run("ip", "link", "set", link, "master", BRIDGE, "up")
    _run("ip", "-n", ns, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", "eth0")
    _run("ip", "-n", ns, "link", "set", "eth0", "up")
    _run("ip", "-n", ns, "link", "set", "lo", "up")
    # DNAT from the node's address to a container's 127.0.1.N address needs this.
    for conf in ("all", "eth0"):
        _run(*in_ns(ns, ["sysctl", "-qw", f"net.ipv4.conf.{conf}.route_localnet=1"]))
    create_nat_table(ns)
    write_hosts(node, address, hosts)
    return ns


def write_hosts(node: str, address: str, hosts: dict[str, str]) -> None:
    """Rewritten in place: processes already running in the namespace see the new names too."""
    etc = NETNS_ETC / namespace(node)
    etc.mkdir(parents=True, exist_ok=True)
    lines = ["127.0.0.1 localhost", f"{address} {node}"] + [f"{ip} {name}" for name, ip in hosts.items()]
    (etc / "hosts").write_text("\n".join(lines) + "\n")


def create_nat_table(ns: str) -> None:
    _run(*in_ns(ns, ["nft", "-f", "-"]), input_text="""\
table ip realfleet {
  chain prerouting { type nat hook prerouting priority dstnat; }
  chain output { type nat hook output priority -100; }
}
""")


def publish(ns: str, address: str, ext: int, ip: str, internal: int) -> None:
    """DNAT the published port to the container's address and internal port, from anywhere."""
    for chain in ("prerouting", "output"):
        _run(*in_ns(ns, ["nft", "add", "rule", "ip", "realfleet", chain, "ip", "daddr", address,
                         "tcp", "dport", str(ext), "dnat", "to", f"{ip}:{internal}"]))


def set_link(node: str, up: bool) -> None:
    """Cut (or restore) a node's only link to the others: its cable pulled out of the switch."""
    _run("ip", "link", "set", host_link(node), "up" if up else "down")


def delete_node(node: str) -> None:
    ns = namespace(node)
    _run("ip", "netns", "del", ns, check=False)
    _run("ip", "link", "del", host_link(node), check=False)
    shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)


def delete_bridge() -> None:
    with contextlib.suppress(subprocess.CalledProcessError):
        _run("ip", "link", "del", BRIDGE)
