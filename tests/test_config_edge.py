"""The load balancer's edge keys (limits, headers, client address, static cache, ACME) and the host
firewall: defaults, and one readable rejection per mistake."""
from __future__ import annotations

from test_config import parses, prod, rejection


def test_edge_defaults():
    lb = parses(prod()).load_balancer
    assert (lb.auth_rate_limit_per_minute, lb.auth_burst, lb.connections_per_address) == (10, 10, 256)
    assert (lb.hsts_max_age_s, lb.referrer_policy, lb.frame_options) == (
        31536000, "strict-origin-when-cross-origin", "SAMEORIGIN")
    assert (lb.trusted_proxies, lb.real_ip_header, lb.static_cache_mb) == ((), "X-Forwarded-For", 1024)
    assert parses(prod()).firewall.enabled is False


def test_a_trusted_proxy_that_is_not_an_address_is_rejected():
    config = prod()
    config["loadBalancer"]["trustedProxies"] = ["173.245.48.0/20", "cloudflare"]
    assert rejection(config) == ("loadBalancer.trustedProxies[1]: 'cloudflare' is not an IP address or CIDR: "
                                 "give e.g. 173.245.48.0/20 or 10.0.0.5")
    config["loadBalancer"]["trustedProxies"] = ["173.245.48.0/20", "2400:cb00::/32"]
    assert parses(config).load_balancer.trusted_proxies == ("173.245.48.0/20", "2400:cb00::/32")


def test_frame_deny_is_refused_because_open_webui_frames_its_own_pages():
    config = prod()
    config["loadBalancer"]["frameOptions"] = "DENY"
    assert rejection(config).startswith("loadBalancer.frameOptions: 'DENY'")


def test_a_zero_sign_in_rate_is_rejected():
    config = prod()
    config["loadBalancer"]["authRateLimitPerMinute"] = 0
    assert rejection(config).startswith("loadBalancer.authRateLimitPerMinute: 0")


def test_acme_replaces_certificate_paths_and_needs_docker_mode():
    config = prod()
    config["loadBalancer"]["tls"] = {"acme": {"email": "ops@example.com"}}
    tls = parses(config).load_balancer.tls
    assert tls.acme.directory == "https://acme-v02.api.letsencrypt.org/directory"
    assert not tls.from_secrets
    config["loadBalancer"]["tls"] = {"acme": {"email": "ops"}}
    assert rejection(config) == ("loadBalancer.tls.acme.email: 'ops' is not an email address: "
                                 "give e.g. ops@example.com")
    config["loadBalancer"]["tls"] = {"acme": {"email": "ops@example.com"}, "certificatePath": "/a.pem",
                                     "keyPath": "/a.key"}
    assert rejection(config).startswith("loadBalancer.tls.acme: and certificatePath/keyPath both say")
    config["loadBalancer"]["tls"] = {"acme": {"email": "ops@example.com", "image": "goacme/lego:latest"}}
    assert rejection(config).startswith("loadBalancer.tls.acme.image: image 'goacme/lego:latest' is not pinned")
    config["loadBalancer"]["tls"] = {"acme": {"email": "ops@example.com"}}
    config["loadBalancer"]["mode"] = "native"
    assert rejection(config).startswith("loadBalancer.tls.acme: runs lego in a container beside nginx")


def test_firewall_needs_every_node_reachable_over_ssh():
    config = prod()
    config["firewall"] = {"enabled": True, "allowFrom": ["10.8.0.0/24"]}
    assert parses(config).firewall.allow_from == ("10.8.0.0/24",)
    config["nodes"]["lab"] = {"dockerHost": "tcp://10.0.9.9:2376", "address": "10.0.9.9"}
    assert rejection(config) == ("firewall.enabled: true applies nftables rules over SSH, but node 'lab' has no "
                                 "host: give nodes.lab.host, or set firewall.enabled: false")
    config["firewall"] = {"enabled": True, "rollbackAfterS": 5}
    assert rejection(config).startswith("firewall.rollbackAfterS: 5")
