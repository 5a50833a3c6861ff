"""Hostile stack config: every value that reaches a shell, a URL, nginx.conf or a path is refused
with one clean message naming its key, before any resource is declared.

Each row edits a real stack's config (issue 10's attacks first, then more of the same kinds).
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from components.config import ConfigError, parse_fleet
from plan.engine import evaluate, stack_config

Edit = Callable[[dict[str, Any]], None]
DIGEST = "sha256:" + "a" * 64


def setter(*path: str | int, value: Any) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        target = config
        for part in path[:-1]:
            target = target.setdefault(part, {}) if isinstance(part, str) else target[part]
        target[path[-1]] = value
    return edit


def external(config: dict[str, Any]) -> None:
    config["sharedServices"].update(mode="external", external={
        "postgres": {"host": "10.0.7.1"}, "redis": {"host": "10.0.7.2"}, "qdrant": {"host": "10.0.7.3"},
        "objectStorage": {"endpoint": "https://s3.example.com", "bucket": "openwebui"}})
    for key in ("postgresPassword", "redisPassword", "qdrantApiKey", "objectStorageAccessKey",
                "objectStorageSecretKey"):
        config[key] = {"secure": "v1:AAAA"}


def then(*edits: Edit) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        for one in edits:
            one(config)
    return edit


# (stack, key the message must start with, edit)
HOSTILE: list[tuple[str, str, Edit]] = [
    # nginx.conf: a path that closes the server block and opens another on plain :80
    ("prod", "loadBalancer.tls.keyPath", setter("loadBalancer", "tls", "keyPath",
                                                value="/etc/ssl/openwebui-fleet/privkey.pem;}server{break")),
    ("prod", "loadBalancer.tls.certificatePath", setter("loadBalancer", "tls", "certificatePath",
                                                        value="/etc/ssl/cert.pem;include /etc/passwd")),
    ("prod", "loadBalancer.tls.certificatePath", setter("loadBalancer", "tls", "certificatePath",
                                                        value="/etc/ssl/a#b.pem")),
    ("prod", "loadBalancer.tls.certificatePath", setter("loadBalancer", "tls", "certificatePath",
                                                        value='/etc/ssl/"cert".pem')),
    ("prod", "loadBalancer.tls.certificatePath", setter("loadBalancer", "tls", "certificatePath",
                                                        value="/etc/ssl/$host.pem")),
    ("prod", "loadBalancer.tls.certificatePath", setter("loadBalancer", "tls", "certificatePath",
                                                        value="/etc/ssl/{x}.pem")),
    ("prod", "loadBalancer.tls.certificatePath", setter("loadBalancer", "tls", "certificatePath",
                                                        value="/etc/ssl/cert.pem\n")),
    ("prod", "loadBalancer.tls.keyPath", setter("loadBalancer", "tls", "keyPath", value="/etc/ssl/../../root/key")),
    ("prod", "loadBalancer.nativeConfPath", setter("loadBalancer", "nativeConfPath", value="/etc/nginx/x.conf;y")),
    # the SSH user reaches ssh:// URLs and the ssh command line
    ("prod", "sshUser", setter("sshUser", value="a$(id)")),
    ("prod", "sshUser", setter("sshUser", value="-oProxyCommand=touch /tmp/pwned")),
    ("prod", "sshUser", setter("sshUser", value="user@evil:2222")),
    ("prod", "sshUser", setter("sshUser", value="deploy\n")),
    ("prod", "sshUser", setter("sshUser", value="de ploy")),
    ("prod", "nodes.master.sshUser", setter("nodes", "master", "sshUser", value="root@10.9.9.9")),
    ("prod", "sshOpts", setter("sshOpts", value=["-oProxyCommand=sh -c id"])),
    ("prod", "sshOpts", setter("sshOpts", value=["-o", "ProxyCommand=sh -c id"])),
    ("prod", "sshOpts", setter("sshOpts", value=["-o", "LocalCommand=id", "-o", "PermitLocalCommand=yes"])),
    ("prod", "sshOpts", setter("sshOpts", value=["-o", "StrictHostKeyChecking=no"])),
    ("prod", "sshOpts", setter("sshOpts", value=["-oUserKnownHostsFile=/dev/null"])),
    ("prod", "nodes.master.sshHostKey", setter("nodes", "master", "sshHostKey", value="ssh-ed25519 AAAA;id")),
    ("prod", "nodes.master.sshHostKey", then(setter("loadBalancer", "mode", value="native"))),
    # the Docker endpoint
    ("local", "nodes.local.dockerHost", setter("nodes", "local", "dockerHost",
                                               value="ssh://user@evil:2222 -oProxyCommand=id")),
    ("local", "nodes.local.dockerHost", setter("nodes", "local", "dockerHost", value="unix:///var/run/docker.sock;id")),
    ("local", "nodes.local.dockerHost", setter("nodes", "local", "dockerHost", value="tcp://10.0.0.5:2375\n")),
    ("local", "nodes.local.dockerHost", setter("nodes", "local", "dockerHost", value="ssh://a$(id)@10.0.0.5")),
    ("local", "nodes.local.dockerHost", setter("nodes", "local", "dockerHost", value="unix://relative/docker.sock")),
    ("local", "nodes.local.dockerHost", setter("nodes", "local", "dockerHost", value="tcp://10.0.0.5")),
    # endpoints, regions, buckets and prefixes of the backup store
    ("prod", "backup.endpoint", setter("backup", "endpoint", value="https://user:pw@fsn1.your-objectstorage.com")),
    ("prod", "backup.endpoint", setter("backup", "endpoint", value="https://fsn1.your-objectstorage.com\n")),
    ("prod", "backup.endpoint", setter("backup", "endpoint", value="https://$(id).example.com")),
    ("local", "backup.jobEndpoint", setter("backup", "jobEndpoint", value="http://openwebui minio:9000")),
    ("local", "backup.jobEndpoint", setter("backup", "jobEndpoint", value="file:///etc/passwd")),
    ("local", "backup.jobEndpoint", setter("backup", "jobEndpoint", value="http://openwebui-minio:9000/../x")),
    ("prod", "backup.region", setter("backup", "region", value="fsn1;id")),
    ("prod", "backup.region", setter("backup", "region", value="../x")),
    ("prod", "backup.region", setter("backup", "region", value="fsn1\n")),
    ("prod", "backup.bucket", setter("backup", "bucket", value="openwebui-backups\n")),
    ("prod", "backup.retention[0].prefix", setter("backup", "retention", 0, "prefix", value="../research/")),
    ("prod", "backup.retention[0].prefix", setter("backup", "retention", 0, "prefix", value="backups/../x/")),
    ("prod", "backup.retention[0].prefix", setter("backup", "retention", 0, "prefix", value="backups/./x/")),
    ("prod", "backup.retention[0].prefix", setter("backup", "retention", 0, "prefix", value="backups/$x/")),
    ("prod", "backup.retention[0].id", setter("backup", "retention", 0, "id", value="expire\n")),
    ("prod", "backup.retention[0].days", setter("backup", "retention", 0, "days", value=True)),
    ("prod", "backup.retention[0].abortMultipartDays", setter("backup", "retention", 0, "abortMultipartDays",
                                                              value=False)),
    ("prod", "sharedServices.objectStorage.bucket", setter("sharedServices", "objectStorage", "bucket",
                                                           value="files;id")),
    ("prod", "sharedServices.objectStorage.bucket", setter("sharedServices", "objectStorage", "bucket", value="..")),
    ("prod", "sharedServices.objectStorage.bucket", setter("sharedServices", "objectStorage", "bucket",
                                                           value="Files")),
    ("prod", "sharedServices.objectStorage.region", setter("sharedServices", "objectStorage", "region",
                                                           value="us-east-1 x")),
    ("prod", "sharedServices.external.objectStorage.bucket",
     then(external, setter("sharedServices", "external", "objectStorage", "bucket", value="../x"))),
    ("prod", "sharedServices.external.objectStorage.region",
     then(external, setter("sharedServices", "external", "objectStorage", "region", value="$(id)"))),
    ("prod", "sharedServices.external.postgres.adminUser",
     then(external, setter("sharedServices", "external", "postgres", "adminUser", value="postgres; DROP"))),
    # images: the tag reaches `docker pull` and the policy pack
    ("prod", "apps.chat.image", setter("apps", "chat", "image", value="ghcr.io/open-webui/open-webui:v0.12.4\n")),
    ("prod", "apps.chat.image", setter("apps", "chat", "image", value="ghcr.io/open-webui/open-webui:v0.12.4;id")),
    ("prod", "apps.chat.image", setter("apps", "chat", "image", value="evil image:1.0")),
    ("prod", "apps.chat.image", setter("apps", "chat", "image", value=f"ghcr.io/x@{DIGEST}\n")),
    ("prod", "apps.chat.image", setter("apps", "chat", "image", value="-ghcr.io/x:1.0")),
    ("prod", "sharedServices.redis.image", setter("sharedServices", "redis", "image", value="redis:7.4.1 --x")),
    # URLs that land in ';'-joined environment lists
    ("prod", "apps.chat.ollamaUrls[0]", setter("apps", "chat", "ollamaUrls", value=["http://a:11434;http://b"])),
    ("prod", "apps.chat.openaiApiBaseUrls[0]", setter("apps", "chat", "openaiApiBaseUrls",
                                                      value=["https://api.example.com/v1\n"])),
    ("prod", "apps.chat.openaiApiBaseUrls[0]", setter("apps", "chat", "openaiApiBaseUrls",
                                                      value=["https://u:p@api.example.com/v1"])),
    # a public address publishes PostgreSQL and Redis to the internet
    ("prod", "nodes.shared.address", setter("nodes", "shared", "address", value="8.8.8.8")),
    ("prod", "nodes.shared.host", setter("nodes", "shared", "host", value="8.8.4.4")),
    # numbers are numbers, not bools
    ("prod", "apps.chat.cpus", setter("apps", "chat", "cpus", value=True)),
    ("prod", "loadBalancer.maxFails", setter("loadBalancer", "maxFails", value=True)),
]


@pytest.mark.parametrize("stack, key, edit", HOSTILE, ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(HOSTILE)])
def test_hostile_value_is_refused_with_one_clean_message(stack: str, key: str, edit: Edit) -> None:
    config = copy.deepcopy(stack_config(stack))
    edit(config)
    evaluation = evaluate(stack, config)
    assert evaluation.error is not None, "accepted"
    assert evaluation.resources == []
    assert "\n" not in evaluation.error and "Traceback" not in evaluation.error
    assert evaluation.error.removeprefix("openwebui-fleet:").startswith(key), evaluation.error


def test_a_public_address_is_accepted_with_the_explicit_opt_in() -> None:
    config = copy.deepcopy(stack_config("prod"))
    config["nodes"]["shared"].update(address="8.8.8.8", publicAddress=True)
    assert evaluate("prod", config).error is None


@pytest.mark.parametrize("value", ["deploy", "ci_runner", "deploy-2", "Deploy.Ops"])
def test_ordinary_ssh_users_are_accepted(value: str) -> None:
    config = copy.deepcopy(stack_config("prod"))
    config["sshUser"] = value
    assert evaluate("prod", config).error is None


@pytest.mark.parametrize("value", ["unix:///var/run/docker.sock", "ssh://deploy@10.0.0.5", "ssh://deploy@node-1.lan:2222",
                                   "tcp://10.0.0.5:2376", "ssh://10.0.0.5"])
def test_ordinary_docker_hosts_are_accepted(value: str) -> None:
    config = copy.deepcopy(stack_config("local"))
    config["nodes"]["local"]["dockerHost"] = value
    assert evaluate("local", config).error is None


# ── the config loader never crashes, whatever it is given ──────────────────────────────────────

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                     st.text(max_size=40), st.sampled_from(["docker", "external", "native", "aws", "minio",
                                                            "/etc/x", "10.0.0.1", "8.8.8.8", "v0.12.4"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=20)
_KEYS = ["nodes", "sharedServices", "apps", "loadBalancer", "backup", "sshUser", "sshOpts"]


def _mutated(stack: str, paths: list[tuple[str, ...]], values: list[Any]) -> dict[str, Any]:
    config = copy.deepcopy(stack_config(stack))
    for path, value in zip(paths, values):
        target: Any = config
        for part in path[:-1]:
            if not isinstance(target, dict):
                break
            target = target.setdefault(part, {})
        if isinstance(target, dict):
            target[path[-1]] = value
    return config


_paths = st.lists(st.one_of(
    st.tuples(st.sampled_from(_KEYS)),
    st.tuples(st.sampled_from(_KEYS), st.sampled_from(["master", "shared", "chat", "tls", "retention", "node",
                                                      "redis", "objectStorage", "replicas", "endpoint"])),
    st.tuples(st.just("apps"), st.just("chat"), st.sampled_from(["image", "port", "replicas", "env", "cpus",
                                                                 "ollamaUrls", "hostname", "memoryMb"])),
), min_size=1, max_size=3)


@settings(max_examples=150, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(stack=st.sampled_from(["prod", "local"]), paths=_paths, values=st.lists(_values, min_size=3, max_size=3))
def test_the_config_loader_never_raises_anything_but_a_config_error(stack: str, paths: list[tuple[str, ...]],
                                                                    values: list[Any]) -> None:
    config = _mutated(stack, paths, values)
    given_secrets = {k for k, v in config.items() if isinstance(v, dict) and set(v) == {"secure"}}
    try:
        parse_fleet(config, given_secrets, {})
    except ConfigError as e:  # one line a mistake (every mistake in one run), none of them a blob
        lines = str(e).split("\n")
        assert all(line and len(line) < 2000 for line in lines)


@settings(max_examples=60, derandomize=True, deadline=None, database=None)
@given(text=st.text(alphabet='{}[]"\\:,0123456789e-.tfnrulas ', max_size=60))
def test_json_looking_config_text_never_crashes_the_program(text: str) -> None:
    config = copy.deepcopy(stack_config("local"))
    config["apps"] = "{" + text
    evaluation = evaluate("local", config)
    assert evaluation.error is None or "Traceback" not in evaluation.error
