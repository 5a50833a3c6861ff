"""A node's host firewall as an nftables ruleset, and the shell that applies it with a safety net.

Only the listed fleet-only ports are restricted (to the fleet's addresses); nothing else on the host
changes. The chain hooks prerouting before Docker's DNAT, so a port Docker publishes is filtered on
the port the client asked for, before Docker's own chains (which bypass ufw and INPUT rules) see it.
"""
from __future__ import annotations

import hashlib
import ipaddress
import shlex
from dataclasses import dataclass

TABLE = "openwebui_fleet"
STATE_DIR = "/var/lib/openwebui-fleet/firewall"
# Docker's DNAT for published ports runs at dstnat (-100); this must decide before it.
PRIORITY = -150
# This node's own containers reach its published ports from Docker's bridges (docker0, br-<id>).
LOCAL_INTERFACES = ("lo", "docker0", "br-*")


@dataclass(frozen=True)
class NodeFirewall:
    """What one node lets through."""

    node: str
    # Addresses or CIDRs that may reach the fleet-only ports: every node of the fleet, plus extras.
    allowed_sources: tuple[str, ...]
    # TCP ports on this node that only allowed_sources may reach (data services, replica host ports).
    fleet_only_ports: tuple[int, ...]
    # TCP ports open to everyone, always let through first (SSH, the load balancer's ports).
    public_ports: tuple[int, ...]


def render_nftables(fw: NodeFirewall) -> str:
    """The whole ruleset for `nft -f`: one transaction that replaces this program's table only."""
    both = set(fw.fleet_only_ports) & set(fw.public_ports)
    if both:
        raise ValueError(f"node {fw.node}: ports {sorted(both)} are both public and fleet-only")
    nets = sorted({ipaddress.ip_network(a, strict=False) for a in fw.allowed_sources},
                  key=lambda n: (n.version, n))
    v4 = [_element(n) for n in nets if n.version == 4]
    v6 = [_element(n) for n in nets if n.version == 6]
    local = "\n".join(f'        iifname "{i}" accept' for i in LOCAL_INTERFACES)
    return f"""\
# Rendered by openwebui-fleet (components/render/firewall.py) for node {fw.node}: change the stack config.
# Loaded with `nft -f` as one transaction: the table is replaced whole, or nothing changes.
table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
    set fleet_ipv4 {{
        type ipv4_addr
        flags interval
{_elements(v4)}    }}

    set fleet_ipv6 {{
        type ipv6_addr
        flags interval
{_elements(v6)}    }}

    set public_tcp {{
        type inet_service
{_elements([str(p) for p in sorted(set(fw.public_ports))])}    }}

    set fleet_only_tcp {{
        type inet_service
{_elements([str(p) for p in sorted(set(fw.fleet_only_ports))])}    }}

    chain prerouting {{
        type filter hook prerouting priority {PRIORITY}; policy accept;
        # Not addressed to this host (a container's own outbound traffic, say): not ours to judge.
        fib daddr type != local accept
        tcp dport @public_tcp accept
        tcp dport != @fleet_only_tcp accept
{local}
        ip saddr @fleet_ipv4 accept
        ip6 saddr @fleet_ipv6 accept
        counter drop
    }}
}}
"""


def _element(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def _elements(items: list[str]) -> str:
    return f"        elements = {{ {', '.join(items)} }}\n" if items else ""


def ruleset_id(ruleset: str) -> str:
    return hashlib.sha256(ruleset.encode()).hexdigest()[:16]


def apply_script(ruleset: str, rollback_after_s: int, state_dir: str = STATE_DIR, nft: str = "nft") -> str:
    """Shell for the node: the ruleset on stdin → checked → loaded atomically, and put back as it was
    after `rollback_after_s` unless confirm_script(ruleset) runs first, over a new connection.

    Applying the same ruleset again changes nothing. The rollback runs detached from this session,
    so a ruleset that cut the session (and thus the confirmation) is undone by itself.
    """
    table = f"inet {TABLE}"
    # Detached (its own session), so it outlives the SSH session; $1 = state dir, $2 = ruleset id.
    rollback = f"""\
sleep {rollback_after_s}
exec 9> "$1/lock"
flock 9
if [ "$(cat "$1/pending")" = "$2" ] && [ "$(cat "$1/confirmed" 2>/dev/null)" != "$2" ]; then
  {nft} -f "$1/rollback-$2.nft" && echo rolled-back > "$1/result-$2"
else
  echo kept > "$1/result-$2"
fi"""
    return f"""\
set -eu
umask 077
st={shlex.quote(state_dir)}
id={ruleset_id(ruleset)}
mkdir -p "$st"
cat > "$st/ruleset-$id.nft"
{nft} -c -f "$st/ruleset-$id.nft"
exec 9> "$st/lock"
flock 9
prev="$(cat "$st/pending" 2>/dev/null || true)"
if [ -n "$prev" ] && [ ! -e "$st/result-$prev" ]; then
  kill -- "-$(cat "$st/rollback-$prev.pid")" 2>/dev/null || true  # superseded by this apply
fi
if [ -n "$prev" ] && [ ! -e "$st/result-$prev" ] && [ "$(cat "$st/confirmed" 2>/dev/null)" != "$prev" ]; then
  # The previous apply was never confirmed: its rollback (to what was there before it) still stands.
  cp "$st/rollback-$prev.nft" "$st/rollback.next"
else
  {{ echo 'table {table}'; echo 'delete table {table}'; {nft} list table {table} 2>/dev/null || true; }} > "$st/rollback.next"
fi
mv -f "$st/rollback.next" "$st/rollback-$id.nft"
rm -f "$st/confirmed" "$st/result-$id"
echo "$id" > "$st/pending"
{nft} -f "$st/ruleset-$id.nft"
nohup setsid sh -c {shlex.quote(rollback)} rollback "$st" "$id" >/dev/null 2>&1 < /dev/null 9>&- &
echo $! > "$st/rollback-$id.pid"  # its own process group: setsid, not a group leader, does not fork
echo "openwebui-fleet: firewall $id applied; rolled back in {rollback_after_s}s unless confirmed"
"""


def confirm_script(ruleset: str, state_dir: str = STATE_DIR) -> str:
    """Run over a new connection after apply_script: reaching the node at all proves the rules let SSH in."""
    return f"""\
set -eu
st={shlex.quote(state_dir)}
id={ruleset_id(ruleset)}
exec 9> "$st/lock"
flock 9  # not while the rollback is deciding
if [ "$(cat "$st/pending" 2>/dev/null)" != "$id" ] || [ -e "$st/result-$id" ]; then
  echo "openwebui-fleet: firewall $id is no longer pending (rolled back or replaced); deploy again" >&2
  exit 1
fi
echo "$id" > "$st/confirmed"
echo "openwebui-fleet: firewall $id confirmed"
"""


def remove_script(nft: str = "nft") -> str:
    """Take this program's table away (firewall disabled or node removed); other rules stay."""
    return f"{nft} list table inet {TABLE} >/dev/null 2>&1 && {nft} delete table inet {TABLE} || true\n"
