"""The load balancer as each stack declares it, and its rendered nginx.conf under a real nginx."""
from __future__ import annotations

import contextlib
import copy
import difflib
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from fleet_queries import CONTAINER, node_of
from lbclient import request
from plan.engine import COMMAND, Evaluation, evaluate
from realservices import free_port, loopback_conf, nginx_server, require_binary, stub_upstream

_UPSTREAM_BLOCK = re.compile(r"upstream (\w+) \{(.*?)\}", re.S)
_SERVER = re.compile(r"^\s*server ([^\s:]+):(\d+)\b", re.M)


def upstreams(conf: str) -> dict[str, list[tuple[str, int]]]:
    """upstream name → its servers, read from the rendered text."""
    return {name: [(a, int(p)) for a, p in _SERVER.findall(body)] for name, body in _UPSTREAM_BLOCK.findall(conf)}


def test_lb_runs_on_its_node_with_config_installed_by_a_one_shot_step(stack: Evaluation) -> None:
    lb_node = stack.config["loadBalancer"]["node"]
    lb, install = stack.named("lb", CONTAINER), stack.named("lb-config", CONTAINER)
    assert node_of(stack, lb) == node_of(stack, install) == lb_node
    assert install.urn in lb.dependencies
    assert install.inputs["uploads"][0]["content"] == stack.outputs["lb"]["nginxConf"]
    assert install.inputs["mustRun"] is False
    assert "nginx -t" in install.inputs["command"][0]


# Written out from the stack files: nginx in a container reaches a replica on its own node by container
# name at Open WebUI's port, and one on another node at that node's address and the replica's published
# port (the app's port, plus one per further replica on the node).
UPSTREAMS = {
    "local": {"app_chat": [("openwebui-chat-local-1", 8080), ("openwebui-chat-local-2", 8080)]},
    "prod": {"app_chat": [("192.168.1.21", 3000), ("192.168.1.21", 3001), ("openwebui-chat-master-1", 8080)],
             "app_research": [("openwebui-research-master-1", 8080)]},
}


def replicas_in_stack_file(config: dict, app: str) -> int:
    return sum(config["apps"][app]["replicas"].values())


def test_every_replica_of_an_app_is_in_its_upstream_and_in_no_other(stack: Evaluation) -> None:
    conf = upstreams(stack.outputs["lb"]["nginxConf"])
    assert conf == UPSTREAMS[stack.stack]
    for app in stack.config["apps"]:
        assert len(set(conf[f"app_{app}"])) == replicas_in_stack_file(stack.config, app)


def test_adding_a_node_changes_the_upstream_list_and_only_the_config_step_of_the_lb(prod: Evaluation) -> None:
    config = copy.deepcopy(prod.config)
    config["nodes"]["slave2"] = {"host": "192.168.1.22"}
    config["apps"]["research"]["replicas"]["slave2"] = 1
    grown = evaluate("prod", config)
    before, after = upstreams(prod.outputs["lb"]["nginxConf"]), upstreams(grown.outputs["lb"]["nginxConf"])
    assert after["app_research"] == sorted(before["app_research"] + [("192.168.1.22", 3100)])
    assert after["app_chat"] == before["app_chat"]
    old_lb, new_lb = prod.named("lb", CONTAINER), grown.named("lb", CONTAINER)
    assert (old_lb.urn, old_lb.inputs) == (new_lb.urn, new_lb.inputs), "the nginx container is never replaced"
    assert prod.named("lb-config", CONTAINER).inputs != grown.named("lb-config", CONTAINER).inputs
    changed = [line for line in difflib.unified_diff(prod.outputs["lb"]["nginxConf"].splitlines(),
                                                     grown.outputs["lb"]["nginxConf"].splitlines(), lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["+        server 192.168.1.22:3100 max_fails=3 fail_timeout=10s;"]


def test_native_mode_writes_the_config_over_ssh_with_nginx_t_and_reload(prod: Evaluation) -> None:
    config = copy.deepcopy(prod.config)
    config["loadBalancer"] = {"node": "master", "mode": "native"}
    config["sshPrivateKey"] = {"secure": "AAAB"}
    ev = evaluate("prod", config)
    assert ev.error is None
    (command,) = ev.of_type(COMMAND)
    inputs = command.inputs
    assert inputs["connection"]["host"] == "192.168.1.14" and inputs["connection"]["user"] == "deploy"
    assert inputs["stdin"] == ev.outputs["lb"]["nginxConf"]
    script = inputs["create"]
    assert script.index("nginx -t") < script.index("mv -f") < script.index("nginx -s reload")
    assert not [c for c in ev.of_type(CONTAINER) if c.name in ("lb", "lb-config")]
    # Native nginx reaches every replica at its node's address, even on its own node.
    assert ("192.168.1.14", 3000) in upstreams(inputs["stdin"])["app_chat"]


# --- the rendered config of each real stack, under a real nginx ---------------------------------

def _self_signed(cert: Path, key: Path) -> None:
    subprocess.run([require_binary("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=example.com"],
                   check=True, capture_output=True)


@pytest.mark.parametrize("stack_name", ["local", "prod"])
def test_each_stacks_nginx_conf_passes_nginx_t_and_routes_every_app_to_all_its_replicas(
        stack_name: str, tmp_path: Path, local: Evaluation, prod: Evaluation) -> None:
    require_binary("nginx")
    ev = {"local": local, "prod": prod}[stack_name]
    conf = ev.outputs["lb"]["nginxConf"]
    lb = ev.config["loadBalancer"]
    paths = {"/var/run/nginx.pid": str(tmp_path / "nginx.pid"), "/var/cache/nginx": str(tmp_path / "cache")}
    (tmp_path / "cache").mkdir()
    tls = lb.get("tls")
    if tls:
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        _self_signed(cert, key)
        paths |= {tls["certificatePath"]: str(cert), tls["keyPath"]: str(key)}
    http_port, https_port = free_port(), free_port()
    listen = {lb.get("httpPort", 80): http_port, lb.get("httpsPort", 443): https_port}
    with contextlib.ExitStack() as stack:
        stubs = {(name, server): stack.enter_context(stub_upstream(f"{name}/{server[0]}:{server[1]}"))
                 for name, servers in upstreams(conf).items() for server in servers}
        local_conf = loopback_conf(conf, listen, {server: s.port for (_, server), s in stubs.items()}, paths)
        stack.enter_context(nginx_server(local_conf, tmp_path / "nginx", http_port))
        for app, spec in ev.config["apps"].items():
            answered: Counter = Counter()
            for _ in range(40):
                reply = request(https_port if tls else http_port, spec["hostname"], "/api/chats", tls=bool(tls))
                assert reply.status == 200, reply
                answered[reply.headers["x-upstream"]] += 1
            mine = {s.name for (name, _), s in stubs.items() if name == f"app_{app}"}
            assert set(answered) == mine, f"{app}: every replica answers, no other app's does"
            assert len(answered) == replicas_in_stack_file(ev.config, app)
        assert request(http_port, "nobody.example.org", lb.get("healthPath", "/lb-health")).status == 200


def test_tls_from_secrets_is_staged_secretly_and_watched_by_the_reload_loop(prod: Evaluation) -> None:
    from fleet_queries import plaintext_leaks, secret_needles
    from plan.engine import is_secret
    config = copy.deepcopy(prod.config)
    config["loadBalancer"]["tls"] = {}
    config["lbTlsCertificate"] = {"secure": "AAAB1"}
    config["lbTlsKey"] = {"secure": "AAAB2"}
    ev = evaluate("prod", config)
    assert ev.error is None
    install, lb = ev.named("lb-config", CONTAINER), ev.named("lb", CONTAINER)
    assert is_secret(install.raw_inputs["uploads"]), "the key makes the whole upload list secret"
    staged = {u["file"]: u["content"] for u in install.inputs["uploads"]}
    assert staged == {"/staging/nginx.conf": ev.outputs["lb"]["nginxConf"],
                      "/staging/tls/fullchain.pem": "mock-secret:lbTlsCertificate",
                      "/staging/tls/privkey.pem": "mock-secret:lbTlsKey"}
    assert "ssl_certificate_key /etc/nginx/fleet/tls/privkey.pem;" in ev.outputs["lb"]["nginxConf"]
    assert "/etc/nginx/fleet/tls/privkey.pem" in lb.inputs["command"][0], "a rotated key triggers a reload"
    assert not any(v.get("hostPath") for v in lb.inputs["volumes"])
    for resource in ev.resources:
        assert plaintext_leaks(resource.raw_inputs, secret_needles(ev)) == [], resource.name
    assert "mock-secret:" not in ev.outputs["lb"]["nginxConf"]
