"""The whole program under the mock engine: what each stack registers, resource by resource."""
from __future__ import annotations

import copy
import json
import ipaddress
from collections import Counter

import pytest

from fleet_queries import (CONTAINER, IMAGE, PROVIDER, VOLUME, env, labels, node_of,
                           plaintext_leaks, replicas_of, secret_needles)
from plan.engine import Evaluation, evaluate, is_secret, stack_config

SHARED_SERVICE_CONTAINERS = {"shared-postgres", "shared-redis", "shared-qdrant", "shared-minio",
                             "shared-object-storage-bucket", "shared-redis-users"}


def test_both_stacks_evaluate_without_error_and_register_each_urn_once(stack: Evaluation) -> None:
    assert stack.error is None
    urns = [r.urn for r in stack.resources]
    assert len(urns) == len(set(urns)) > 0


def test_prod_places_services_on_shared_node_and_replicas_where_config_says(prod: Evaluation) -> None:
    per_node = Counter(node_of(prod, c) for c in prod.of_type(CONTAINER))
    # shared: 4 services + bucket and users setup + Redis users step + backup job, its database role and the
    # report job + one database bootstrap and one analytics-grants step per app; master also runs the load
    # balancer and its config step
    assert per_node == {"shared": 9 + 2 * 2, "master": 2 + 2, "slave1": 2}
    assert {c.name for c in prod.of_type(CONTAINER) if node_of(prod, c) == "shared"} == \
        SHARED_SERVICE_CONTAINERS | {"backup", "backup-database-role", "analytics", "chat-database",
                                     "research-database", "chat-analytics-grants", "research-analytics-grants"}
    assert sorted(c.name for c in replicas_of(prod, "chat")) == ["chat-master-1", "chat-slave1-1", "chat-slave1-2"]
    assert [c.name for c in replicas_of(prod, "research")] == ["research-master-1"]


def test_local_stack_runs_everything_on_the_local_socket(local: Evaluation) -> None:
    (provider,) = local.of_type(PROVIDER)
    assert provider.inputs["host"] == "unix:///var/run/docker.sock"
    assert sorted(c.name for c in replicas_of(local, "chat")) == ["chat-local-1", "chat-local-2"]
    for container in local.of_type(CONTAINER):
        for port in container.inputs.get("ports", []):
            assert port["ip"] == "127.0.0.1"


def test_each_node_gets_one_ssh_provider_and_every_resource_on_it_uses_that_provider(prod: Evaluation) -> None:
    # The engine hands provider inputs over as strings.
    providers = {p.name: {**p.inputs, "sshOpts": json.loads(p.inputs["sshOpts"])} for p in prod.of_type(PROVIDER)}
    assert providers == {
        "shared": {"host": "ssh://deploy@10.0.5.24", "sshOpts": prod.config["sshOpts"]},
        "master": {"host": "ssh://deploy@192.168.1.14", "sshOpts": prod.config["sshOpts"]},
        "slave1": {"host": "ssh://deploy@192.168.1.21", "sshOpts": prod.config["sshOpts"]},
    }
    for container in prod.of_type(CONTAINER):
        node = labels(container).get("openwebui-fleet.node")
        if node:
            assert node_of(prod, container) == node
    for resource in prod.resources:
        if resource.type.startswith("docker:"):
            assert resource.provider_urn, f"{resource.name} has no explicit provider"


def test_replica_environment_is_wired_for_many_replicas(stack: Evaluation) -> None:
    shared_node = stack.config["sharedServices"]["node"]
    for app, spec in stack.config["apps"].items():
        for container in replicas_of(stack, app):
            e = env(container)
            node = labels(container)["openwebui-fleet.node"]
            pg_host = "openwebui-postgres:5432" if node == shared_node else \
                f"{stack.config['nodes'][shared_node]['host']}:5432"
            assert e["DATABASE_URL"].startswith(f"postgresql://openwebui_{app}:")
            assert e["DATABASE_URL"].split("?")[0].endswith(f"@{pg_host}/openwebui_{app}")
            assert "keepalives=1" in e["DATABASE_URL"] and "tcp_user_timeout=" in e["DATABASE_URL"]
            assert e["WEBSOCKET_MANAGER"] == "redis" and e["ENABLE_WEBSOCKET_SUPPORT"] == "true"
            assert e["WEBSOCKET_REDIS_URL"] == e["REDIS_URL"] and e["REDIS_URL"].startswith(f"redis://app-{app}:")
            assert e["VECTOR_DB"] == "qdrant" and e["QDRANT_URI"].startswith("http://")
            assert e["STORAGE_PROVIDER"] == "s3" and e["S3_ADDRESSING_STYLE"] == "path"
            assert e["UVICORN_WORKERS"] == "1"
            assert e["WEBUI_URL"] == e["CORS_ALLOW_ORIGIN"]
            assert spec["hostname"] in e["WEBUI_URL"]
            assert not any("sqlite" in v for v in e.values())


def test_a_replica_that_stops_answering_is_killed_by_its_check_and_restarted_by_docker(stack: Evaluation) -> None:
    """Docker never restarts an unhealthy container: the check kills the container's processes (all but
    the init Docker injects) once Docker would call it unhealthy, and the restart policy brings it back.
    tests/render/test_watchdog.py runs the check itself; tests/realfleet proves the recovery."""
    for app in stack.config["apps"]:
        for container in replicas_of(stack, app):
            inputs = container.inputs
            check = inputs["healthcheck"]
            assert inputs["init"] is True and inputs["restart"] == "unless-stopped"
            assert check["tests"][0] == "CMD-SHELL" and "kill -KILL -1" in check["tests"][1]
            assert "http://localhost:8080/health" in check["tests"][1]
            assert check["timeout"] == "5s" and "--max-time 4 " in check["tests"][1]
            assert check["retries"] == 5 and "-ge 5 ]" in check["tests"][1]


def test_replicas_of_an_app_share_its_secrets_and_apps_share_none(prod: Evaluation) -> None:
    per_app = {app: [env(c) for c in replicas_of(prod, app)] for app in prod.config["apps"]}
    isolated = ("WEBUI_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "REDIS_KEY_PREFIX", "QDRANT_COLLECTION_PREFIX",
                "S3_KEY_PREFIX", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")
    for key in isolated:
        values = {app: {e[key].split("@")[0] for e in envs} for app, envs in per_app.items()}
        assert all(len(v) == 1 for v in values.values()), f"{key} differs between replicas of one app"
        assert values["chat"] != values["research"], f"{key} is shared between apps"


def test_exactly_one_replica_per_app_runs_migrations(stack: Evaluation) -> None:
    for app in stack.config["apps"]:
        migrating = [c.name for c in replicas_of(stack, app) if env(c)["ENABLE_DB_MIGRATIONS"] == "true"]
        others = [c for c in replicas_of(stack, app) if env(c)["ENABLE_DB_MIGRATIONS"] == "false"]
        assert len(migrating) == 1
        assert len(others) == len(replicas_of(stack, app)) - 1


def test_other_replicas_start_after_the_migrating_one_which_starts_after_its_database(prod: Evaluation) -> None:
    for app in prod.config["apps"]:
        migrator = next(c for c in replicas_of(prod, app) if env(c)["ENABLE_DB_MIGRATIONS"] == "true")
        assert prod.named(f"{app}-database", CONTAINER).urn in migrator.dependencies
        for other in replicas_of(prod, app):
            if other is not migrator:
                assert migrator.urn in other.dependencies
            assert other.delete_before_replace


def test_published_ports_are_on_the_nodes_own_address_never_all_interfaces(stack: Evaluation) -> None:
    addresses = {name: n.get("address", n.get("host")) for name, n in stack.config["nodes"].items()}
    for container in stack.of_type(CONTAINER):
        for port in container.inputs.get("ports", []):
            assert not ipaddress.ip_address(port["ip"]).is_unspecified
            assert port["ip"] == addresses[node_of(stack, container)]


def test_every_image_is_pinned_to_a_version(stack: Evaluation) -> None:
    for image in stack.of_type(IMAGE):
        ref = image.inputs["name"]
        tag = ref.rpartition(":")[2]
        assert tag not in {"latest", "main", "dev"} and any(ch.isdigit() for ch in tag), ref
    for container in stack.of_type(CONTAINER):
        assert container.inputs["image"].startswith("sha256:"), "containers run the pulled, pinned image"


def test_stateful_volumes_are_protected_and_retained(stack: Evaluation) -> None:
    # The LB's config, Redis's users and the backup job's scratch space are rewritten at will: not state.
    volumes = [v for v in stack.of_type(VOLUME) if v.name not in ("lb-conf", "backup-work", "shared-redis-acl")]
    assert {v.name for v in volumes} >= {"shared-postgres-data", "shared-redis-data", "shared-qdrant-data", "shared-minio-data"}
    for volume in volumes:
        assert volume.protect and volume.retain_on_delete, volume.name


def test_redis_runs_with_the_settings_websockets_need_and_users_from_its_acl_file(stack: Evaluation) -> None:
    redis = stack.named("shared-redis", CONTAINER)
    command = " ".join(redis.inputs["command"])
    assert command.startswith("redis-server --aclfile /usr/local/etc/redis/users.acl ")
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert "requirepass" not in command and "uploads" not in redis.inputs
    # Its users come from a volume that the users step writes (and reloads live), before Redis starts.
    step = stack.named("shared-redis-users", CONTAINER)
    assert step.urn in redis.dependencies
    assert {v["containerPath"] for v in redis.inputs["volumes"]} == {"/data", "/usr/local/etc/redis"}
    assert [v["volumeName"] for v in step.inputs["volumes"]] == ["openwebui-redis-acl"]
    acl = step.inputs["uploads"][0]["content"]
    users = {line.split()[1] for line in acl.splitlines()}
    assert users == {"default", "fleet-admin", *(f"app-{app}" for app in stack.config["apps"])}
    assert "user default off " in acl
    assert is_secret(step.raw_inputs["uploads"])


def test_no_secret_appears_in_plaintext_in_any_input_or_output(stack: Evaluation) -> None:
    needles = secret_needles(stack)
    assert len(stack.generated_secrets) >= 5
    for resource in stack.resources:
        assert plaintext_leaks(resource.raw_inputs, needles) == [], resource.name
        for label in resource.inputs.get("labels", []):
            assert not any(n in label["value"] for n in needles)
    assert plaintext_leaks(stack.outputs, needles) == []


def test_config_secrets_are_used_and_stay_secret() -> None:
    config = copy.deepcopy(stack_config("prod"))
    config["postgresPassword"] = {"secure": "AAABAKxyz"}
    config["apps"]["chat"]["microsoftOAuth"] = {"clientId": "client-1", "tenantId": "tenant-1"}
    config["appSecrets"] = {"chat": {"microsoftClientSecret": {"secure": "AAABAKabc"}}}
    ev = evaluate("prod", config)
    assert ev.error is None
    chat = replicas_of(ev, "chat")[0]
    assert env(chat)["MICROSOFT_CLIENT_SECRET"] == "mock-secret:appSecrets.chat.microsoftClientSecret"
    postgres_env = env(ev.named("shared-postgres", CONTAINER))
    assert postgres_env["POSTGRES_PASSWORD"] == "mock-secret:postgresPassword"
    assert not any(r.name == "postgres-password" for r in ev.resources), "given secrets are not generated"
    for resource in ev.resources:
        assert plaintext_leaks(resource.raw_inputs, secret_needles(ev)) == [], resource.name


def _with_node(config: dict, node: str, host: str, app: str = "chat", count: int = 1) -> dict:
    edited = copy.deepcopy(config)
    edited["nodes"][node] = {"host": host}
    edited["apps"][app]["replicas"][node] = count
    return edited


def test_adding_a_node_leaves_every_existing_urn_and_input_untouched_but_the_lb_config(prod: Evaluation) -> None:
    grown = evaluate("prod", _with_node(prod.config, "slave2", "192.168.1.22"))
    before, after = prod.by_urn(), grown.by_urn()
    assert set(before) <= set(after)
    changed = {r.name for urn, r in before.items() if after[urn].inputs != r.inputs}
    assert changed == {"lb-config"}, "only the load balancer's config step follows the new replica"
    added = {after[u].name for u in set(after) - set(before)}
    assert added == {"slave2", "slave2-network", "slave2-ghcr.io-open-webui-open-webui-v0.12.4",
                     "chat-slave2-1", "chat-slave2-1-data"}


def test_removing_a_node_from_the_middle_leaves_other_urns_untouched(prod: Evaluation) -> None:
    config = _with_node(prod.config, "slave2", "192.168.1.22")
    grown = evaluate("prod", config)
    del config["nodes"]["slave1"]
    del config["apps"]["chat"]["replicas"]["slave1"]
    shrunk = evaluate("prod", config)
    gone = {r.name for r in grown.resources} - {r.name for r in shrunk.resources}
    assert gone == {"slave1", "slave1-network", "slave1-ghcr.io-open-webui-open-webui-v0.12.4",
                    "chat-slave1-1", "chat-slave1-1-data", "chat-slave1-2", "chat-slave1-2-data"}
    assert {r.urn for r in shrunk.resources} <= {r.urn for r in grown.resources}


@pytest.mark.parametrize("app", ["chat", "research"])
def test_app_database_bootstrap_runs_on_the_shared_node_with_secret_passwords(prod: Evaluation, app: str) -> None:
    bootstrap = prod.named(f"{app}-database", CONTAINER)
    assert node_of(prod, bootstrap) == "shared"
    e = env(bootstrap)
    assert e["APP_ROLE"] == e["APP_DB"] == f"openwebui_{app}"
    assert e["APP_ANALYTICS_ROLE"] == f"openwebui_{app}_analytics"
    assert e["APP_ANALYTICS_PASSWORD"] and e["APP_ANALYTICS_PASSWORD"] not in (e["APP_DB_PASSWORD"], e["PGPASSWORD"])
    assert e["PGHOST"] == "openwebui-postgres"
    assert is_secret(bootstrap.raw_inputs["envs"]), "passwords make the whole env list secret"
    upload = bootstrap.inputs["uploads"][0]
    assert "password" in upload["content"] and not any(n in upload["content"] for n in secret_needles(prod))


def test_every_variable_a_replica_gets_is_one_open_webui_reads(stack: Evaluation) -> None:
    from components.config import OPENWEBUI_ENV_NAMES
    for app in stack.config["apps"]:
        for replica in replicas_of(stack, app):
            assert sorted(set(env(replica)) - OPENWEBUI_ENV_NAMES) == []


def test_external_services_deploy_no_service_containers_and_use_configured_endpoints(prod: Evaluation) -> None:
    config = copy.deepcopy(prod.config)
    config["sharedServices"] = {"node": "shared", "mode": "external", "external": {
        "postgres": {"host": "db.internal", "adminUser": "admin"}, "redis": {"host": "10.0.9.2"},
        "qdrant": {"host": "10.0.9.3"},
        "objectStorage": {"endpoint": "https://s3.internal", "bucket": "webui-files"}}}
    for key in ("postgresPassword", "redisPassword", "qdrantApiKey", "objectStorageAccessKey",
                "objectStorageSecretKey"):
        config[key] = {"secure": "AAAB"}
    ev = evaluate("prod", config)
    assert ev.error is None
    shared = {c.name for c in ev.of_type(CONTAINER) if node_of(ev, c) == "shared"}
    assert shared == {"chat-database", "research-database", "backup", "backup-database-role", "analytics",
                      "chat-analytics-grants", "research-analytics-grants"}
    assert not [v for v in ev.of_type(VOLUME) if v.name in ("shared-postgres-data", "shared-redis-data")]
    e = env(replicas_of(ev, "chat")[0])
    assert e["DATABASE_URL"].split("?")[0] == \
        "postgresql://openwebui_chat:MOCK-GENERATED-SECRET-chat-db-password@db.internal:5432/openwebui_chat"
    assert e["REDIS_URL"] == "redis://:mock-secret%3AredisPassword@10.0.9.2:6379/0"
    assert e["QDRANT_URI"] == "http://10.0.9.3:6333" and e["QDRANT_API_KEY"] == "mock-secret:qdrantApiKey"
    assert e["S3_ENDPOINT_URL"] == "https://s3.internal" and e["S3_BUCKET_NAME"] == "webui-files"
    bootstrap = env(ev.named("chat-database", CONTAINER))
    assert (bootstrap["PGHOST"], bootstrap["PGUSER"], bootstrap["PGPASSWORD"]) == \
        ("db.internal", "admin", "mock-secret:postgresPassword")
    for resource in ev.resources:
        assert plaintext_leaks(resource.raw_inputs, secret_needles(ev)) == [], resource.name


def test_shared_ollama_runs_next_to_the_services_and_apps_that_ask_for_it_use_it(local: Evaluation) -> None:
    config = copy.deepcopy(local.config)
    config["sharedServices"]["ollama"] = {"enabled": True}
    config["apps"]["chat"]["useSharedOllama"] = True
    ev = evaluate("local", config)
    ollama = ev.named("shared-ollama", CONTAINER)
    assert ollama.inputs["ports"][0]["ip"] == "127.0.0.1"
    e = env(replicas_of(ev, "chat")[0])
    assert e["OLLAMA_BASE_URLS"] == "http://openwebui-ollama:11434" and e["ENABLE_OLLAMA_API"] == "true"


def test_an_app_on_several_nodes_without_migration_node_gets_a_warning(prod: Evaluation,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    config = copy.deepcopy(prod.config)
    del config["apps"]["chat"]["migrationNode"]
    with caplog.at_level("WARNING"):
        ev = evaluate("prod", config)
    assert ev.error is None
    warnings = [r.getMessage() for r in caplog.records if "migrationNode" in r.getMessage()]
    assert warnings == ["apps.chat: database migrations run on node 'master' (first by name); a node added "
                        "later that sorts before it would take them over: set apps.chat.migrationNode: "
                        "master to pin them"]
