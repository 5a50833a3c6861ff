"""Every mistake a user can make in stack config is rejected with one line naming the key, the
bad value and the fix. Each test takes a real stack's config and makes one edit to it."""
from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from components.config import ConfigError, parse_fleet
from plan.engine import evaluate, stack_config

ALL_SECRETS = {"postgresPassword", "redisPassword", "qdrantApiKey", "objectStorageAccessKey",
               "objectStorageSecretKey"}
EXTERNAL = {"postgres": {"host": "db.example.com"}, "redis": {"host": "10.0.7.2"},
            "qdrant": {"host": "10.0.7.3"},
            "objectStorage": {"endpoint": "https://s3.example.com", "bucket": "openwebui"}}


def prod() -> dict[str, Any]:
    return copy.deepcopy(stack_config("prod"))


def local() -> dict[str, Any]:
    return copy.deepcopy(stack_config("local"))


def parses(config: dict[str, Any], secrets: set[str] | None = None,
           app_secrets: dict[str, Any] | None = None):
    given = {k for k, v in config.items() if isinstance(v, dict) and set(v) == {"secure"}}
    return parse_fleet(config, given | (secrets or set()), app_secrets or {})


def rejection(config: dict[str, Any], secrets: set[str] | None = None,
              app_secrets: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parses(config, secrets, app_secrets)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


# ── the real stacks ────────────────────────────────────────────────────────────────────────────

def test_prod_and_local_stacks_parse():
    assert sorted(parses(prod()).apps) == ["chat", "research"]
    assert list(parses(local()).nodes) == ["local"]


def test_app_defaults_are_a_pinned_open_webui_image_on_port_3000():
    chat = parses(prod()).apps["chat"]
    assert chat.image == "ghcr.io/open-webui/open-webui:v0.12.4"
    assert chat.port == 3000
    assert chat.migrating_node == "master"


def test_shared_services_default_to_docker_mode_with_the_usual_ports():
    shared = parses(prod()).shared_services
    assert shared.mode == "docker"
    assert (shared.postgres.port, shared.redis.port, shared.qdrant.port) == (5432, 6379, 6333)
    assert shared.ollama.enabled is False


# ── unknown keys and names ─────────────────────────────────────────────────────────────────────

def test_unknown_node_in_replicas_names_the_app_the_node_and_the_known_nodes():
    config = prod()
    config["apps"]["chat"]["replicas"]["slave9"] = 1
    assert rejection(config) == ("apps.chat.replicas: node 'slave9' is not under nodes "
                                 "(known: master, shared, slave1)")


def test_typo_in_an_app_key_lists_the_apps_known_keys():
    config = prod()
    config["apps"]["chat"]["replica"] = config["apps"]["chat"].pop("replicas")
    message = rejection(config)
    assert message.startswith("apps.chat.replica: unknown key 'replica': write 'replicas' (known keys here: ")
    assert "replicas" in message and "memoryMb" in message and "microsoftOAuth" in message


def test_typo_in_a_node_key_lists_the_nodes_known_keys():
    config = prod()
    config["nodes"]["master"]["hostName"] = "m.example.com"
    assert rejection(config) == ("nodes.master.hostName: unknown key 'hostName': "
                                 "write 'host' (known keys here: host, address, dockerHost, sshUser, sshPort, "
                                 "memoryMb, cpus, publicAddress, sshHostKey)")


def test_typo_in_a_top_level_key_names_it_with_the_project_prefix_and_lists_known_keys():
    config = prod()
    config["sshUsr"] = "deploy"
    message = rejection(config)
    assert message.startswith("openwebui-fleet:sshUsr: unknown key: write 'sshUser' (known keys are ")
    assert "sshUser" in message and "appSecrets" in message


def test_typo_in_a_nested_service_key_lists_that_services_keys():
    config = prod()
    config["sharedServices"]["postgres"] = {"prot": 5433}
    assert rejection(config) == ("sharedServices.postgres.prot: unknown key 'prot': "
                                 "write 'port' (known keys here: image, port, adminUser, settings)")


@pytest.mark.parametrize("name", ["Master", "slave_1", "1slave", "slave-", "a" * 25])
def test_invalid_node_name_is_rejected_with_the_naming_rule(name):
    config = prod()
    config["nodes"][name] = {"host": "10.0.5.99"}
    message = rejection(config)
    assert message.startswith(f"nodes.{name}: '{name}' is not a valid name: ")
    assert "lowercase letters, digits and '-'" in message


@pytest.mark.parametrize("name", ["Chat", "my_app", "2chat", "b" * 25])
def test_invalid_app_name_is_rejected_with_the_naming_rule(name):
    config = prod()
    config["apps"][name] = config["apps"].pop("research")
    message = rejection(config)
    assert message.startswith(f"apps.{name}: '{name}' is not a valid name: ")
    assert "starting with a letter" in message


# ── nodes ──────────────────────────────────────────────────────────────────────────────────────

def test_host_that_looks_like_an_ip_but_is_not_one_is_rejected_as_a_bad_ip():
    config = prod()
    config["nodes"]["shared"]["host"] = "10.0.5.300"
    assert rejection(config) == ("nodes.shared.host: '10.0.5.300' is not a valid IP address: "
                                 "give the node's IP (e.g. 10.0.5.24)")


def test_host_that_is_neither_ip_nor_dns_name_is_rejected():
    config = prod()
    config["nodes"]["shared"]["host"] = "-bad-"
    message = rejection(config)
    assert message.startswith("nodes.shared.host: '-bad-' is neither an IP address nor a DNS name")


def test_address_on_every_interface_is_rejected():
    config = prod()
    config["nodes"]["master"]["address"] = "0.0.0.0"
    assert rejection(config) == ("nodes.master.address: '0.0.0.0' would publish on every interface: "
                                 "give the node's own address")


def test_node_with_neither_host_nor_docker_host_asks_for_one():
    config = local()
    del config["nodes"]["local"]["dockerHost"]
    message = rejection(config)
    assert message.startswith("nodes.local: give 'host' (reached over SSH) or 'dockerHost'")


def test_dns_name_host_without_address_asks_for_the_address():
    config = prod()
    config["nodes"]["slave1"]["host"] = "slave1.lan"
    message = rejection(config)
    assert message.startswith("nodes.slave1.address: required because host 'slave1.lan' is a name")
    assert "give the IP this node publishes services on" in message


def test_dns_name_host_with_address_is_accepted():
    config = prod()
    config["nodes"]["slave1"].update(host="slave1.lan", address="192.168.1.21")
    assert parses(config).nodes["slave1"].bind_address == "192.168.1.21"


def test_docker_host_without_a_scheme_is_rejected():
    config = local()
    config["nodes"]["local"]["dockerHost"] = "/var/run/docker.sock"
    assert rejection(config) == ("nodes.local.dockerHost: '/var/run/docker.sock' must start with "
                                 "unix://, ssh:// or tcp://")


def test_two_nodes_on_the_same_ssh_engine_are_rejected_even_with_different_users():
    config = prod()
    config["nodes"]["slave1"].update(host="192.168.1.14", sshUser="other")
    assert rejection(config) == ("nodes.slave1: ssh://192.168.1.14 is the same Docker engine as "
                                 "nodes.master: remove one, or give each node its own host")


def test_two_nodes_on_the_same_local_socket_are_rejected():
    config = local()
    config["nodes"]["second"] = {"dockerHost": "unix:///var/run/docker.sock", "address": "127.0.0.1"}
    message = rejection(config)
    assert message.startswith("nodes.second: unix:///var/run/docker.sock is the same Docker engine "
                              "as nodes.local")


def test_ssh_node_without_any_ssh_user_names_both_places_to_set_it():
    config = prod()
    del config["sshUser"]
    assert rejection(config) == ("sshUser: is not set and nodes master, shared, slave1 are reached over SSH: "
                                 "set sshUser (for every node) or each node's sshUser")
    config["nodes"]["master"]["sshUser"] = config["nodes"]["slave1"]["sshUser"] = "ops"
    assert rejection(config) == ("nodes.shared: host '10.0.5.24' is reached over SSH but no user is "
                                 "set: set sshUser (for every node) or nodes.shared.sshUser")


def test_per_node_ssh_users_are_enough_without_a_global_one():
    config = prod()
    del config["sshUser"]
    for node in config["nodes"].values():
        node["sshUser"] = "ops"
    assert parses(config).nodes["master"].docker_url(None) == "ssh://ops@192.168.1.14"


# ── replicas ───────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("count, shown, fix", [
    (-1, "-1 is out of range", "write a number from 1 to 100, e.g. slave1: 1"),
    (0, "0 is out of range", "write a number from 1 to 100, e.g. slave1: 1"),
    (1.5, "1.5 is not a whole number", "write one from 1 to 100, e.g. slave1: 1"),
    ("2", "'2' is a string", "write the number without quotes, e.g. 2"),
    (True, "True is not a whole number", "write one from 1 to 100, e.g. slave1: 1"),
    (101, "101 is out of range", "write a number from 1 to 100, e.g. slave1: 1"),
])
def test_replica_count_that_is_not_a_whole_number_from_1_is_rejected(count, shown, fix):
    config = prod()
    config["apps"]["chat"]["replicas"]["slave1"] = count
    message = rejection(config)
    assert message.startswith(f"apps.chat.replicas.slave1: {shown}: ")
    assert fix in message


def test_app_with_no_replicas_is_rejected():
    config = prod()
    config["apps"]["research"]["replicas"] = {}
    assert rejection(config) == ("apps.research.replicas: {} places no replica: give at least one node, "
                                 "e.g. replicas: {master: 1}")


def test_migration_node_without_a_replica_of_the_app_names_the_nodes_to_pick():
    config = prod()
    config["apps"]["research"]["migrationNode"] = "slave1"
    assert rejection(config) == ("apps.research.migrationNode: 'slave1' has no replica of this app: "
                                 "pick one of master")


def test_app_and_node_names_that_spell_the_same_replica_name_are_rejected():
    config = local()
    config["nodes"] = {"c": {"dockerHost": "tcp://10.0.0.1:2375", "address": "10.0.0.1"},
                       "b-c": {"dockerHost": "tcp://10.0.0.2:2375", "address": "10.0.0.2"}}
    config["sharedServices"]["node"] = config["loadBalancer"]["node"] = "c"
    config["apps"] = {"a-b": {"hostname": "ab.example.com", "replicas": {"c": 1}},
                      "a": {"hostname": "a.example.com", "replicas": {"b-c": 1}}}
    message = rejection(config)
    assert message.startswith("apps.a.replicas.b-c: apps.a on node 'b-c' and apps.a-b on node 'c' ")
    assert "same name 'a-b-c-N': rename an app or a node" in message


def test_port_plus_replicas_past_65535_says_the_highest_port_that_fits():
    config = prod()
    config["apps"]["chat"]["port"] = 65535
    assert rejection(config) == ("apps.chat.port: 65535 with 2 replicas on one node runs to port 65536, "
                                 "past 65535: set port to at most 65534")
    config["apps"]["chat"]["port"] = 65534
    assert parses(config).apps["chat"].host_port(2) == 65535


# ── apps ───────────────────────────────────────────────────────────────────────────────────────

def test_two_apps_with_the_same_hostname_are_rejected():
    config = prod()
    config["apps"]["research"]["hostname"] = "chat.example.com"
    assert rejection(config) == ("apps.research.hostname: 'chat.example.com' is already apps.chat's: "
                                 "give each app its own hostname")


@pytest.mark.parametrize("image", ["ghcr.io/open-webui/open-webui:latest", "ghcr.io/open-webui/open-webui",
                                   "ghcr.io/open-webui/open-webui:main", "localhost:5000/open-webui"])
def test_unpinned_image_is_rejected(image):
    config = prod()
    config["apps"]["chat"]["image"] = image
    message = rejection(config)
    assert message.startswith(f"apps.chat.image: image '{image}' is not pinned: give an explicit version tag")


def test_image_pinned_by_digest_or_version_tag_is_accepted():
    config = prod()
    digest = "ghcr.io/open-webui/open-webui@sha256:" + "0123456789abcdef" * 4
    config["apps"]["chat"]["image"] = digest
    config["apps"]["research"]["image"] = "localhost:5000/open-webui:v0.6.5-cuda"
    fleet = parses(config)
    assert fleet.apps["chat"].image == digest
    assert fleet.apps["research"].image == "localhost:5000/open-webui:v0.6.5-cuda"


def test_image_with_a_malformed_digest_is_rejected():
    config = prod()
    config["apps"]["chat"]["image"] = "ghcr.io/open-webui/open-webui@sha256:abc"
    assert rejection(config) == ("apps.chat.image: image 'ghcr.io/open-webui/open-webui@sha256:abc' has a "
                                 "malformed digest: give @sha256: and 64 hex digits")


def test_app_env_that_overrides_a_managed_variable_is_rejected():
    config = prod()
    config["apps"]["chat"]["env"] = {"ENABLE_SIGNUP": "false", "DATABASE_URL": "postgresql://elsewhere"}
    assert rejection(config) == ("apps.chat.env: sets DATABASE_URL, which the program manages: "
                                 "remove it from env (see the README's config reference)")


def test_app_env_value_that_is_not_a_string_asks_for_quotes():
    config = prod()
    config["apps"]["chat"]["env"] = {"ENABLE_SIGNUP": False}
    assert rejection(config) == "apps.chat.env.ENABLE_SIGNUP: False is not a string: quote it, e.g. 'false'"


def test_use_shared_ollama_without_ollama_enabled_is_rejected():
    config = prod()
    config["apps"]["chat"]["useSharedOllama"] = True
    message = rejection(config)
    assert message.startswith("apps.chat.useSharedOllama: true needs sharedServices.ollama.enabled: true")
    config["sharedServices"]["ollama"] = {"enabled": True}
    config["apps"]["chat"].update(replicas={"shared": 2}, migrationNode="shared")
    assert parses(config).apps["chat"].use_shared_ollama


def test_ollama_url_without_a_scheme_is_rejected_with_an_example():
    config = prod()
    config["apps"]["chat"]["ollamaUrls"] = ["http://10.0.5.30:11434", "10.0.5.31:11434"]
    assert rejection(config) == ("apps.chat.ollamaUrls[1]: '10.0.5.31:11434' is not an http(s) URL: "
                                 "give e.g. http://10.0.5.24:11434")


def test_microsoft_oauth_without_its_client_secret_says_how_to_set_it():
    config = prod()
    config["apps"]["chat"]["microsoftOAuth"] = {"clientId": "cid-123", "tenantId": "tid-9"}
    assert rejection(config) == ("apps.chat.microsoftOAuth: clientId 'cid-123' needs its client secret: "
                                 "pulumi config set --secret --path 'appSecrets.chat.microsoftClientSecret' ...")
    fleet = parses(config, app_secrets={"chat": {"microsoftClientSecret": "s3cret"}})
    assert fleet.apps["chat"].microsoft_oauth.client_id == "cid-123"


def test_app_secrets_for_an_unknown_app_are_rejected():
    assert rejection(prod(), app_secrets={"chta": {"openaiApiKeys": ["sk-1"]}}) == (
        "appSecrets.chta: no app named 'chta' (apps: chat, research): rename or remove it")


def test_app_secrets_with_a_typo_list_the_known_secret_keys():
    assert rejection(prod(), app_secrets={"chat": {"microsoftSecret": "x"}}) == (
        "appSecrets.chat.microsoftSecret: unknown key 'microsoftSecret': "
        "write 'microsoftClientSecret' (known keys here: microsoftClientSecret, googleClientSecret, "
        "githubClientSecret, oidcClientSecret, openaiApiKeys, env)")


# ── ports ──────────────────────────────────────────────────────────────────────────────────────

def suggested_port(message: str) -> int:
    return int(re.search(r"to a free port, e\.g\. (\d+)$", message).group(1))


def test_two_apps_on_one_node_with_the_same_port_are_rejected_with_a_free_port_that_works():
    config = prod()
    config["apps"]["research"]["port"] = 3000
    message = rejection(config)
    assert message.startswith("apps.research.port: 3000 collides on node master: port 3000 is already "
                              "used by apps.chat.port (replica 1): set apps.research.port to a free port")
    config["apps"]["research"]["port"] = suggested_port(message)
    parses(config)


def test_second_replica_colliding_with_another_app_is_reported_at_the_port_it_needs():
    config = prod()
    config["apps"]["research"]["replicas"] = {"slave1": 1}
    config["apps"]["research"]["migrationNode"] = "slave1"
    config["apps"]["research"]["port"] = 3001
    message = rejection(config)
    assert message.startswith("apps.research.port: 3001 collides on node slave1: port 3001 is already "
                              "used by apps.chat.port (replica 2)")
    config["apps"]["research"]["port"] = suggested_port(message)
    parses(config)


def test_app_port_colliding_with_a_shared_service_suggests_a_port_free_on_all_its_nodes():
    config = prod()
    config["apps"]["chat"]["replicas"]["shared"] = 1
    config["apps"]["chat"]["port"] = 5432
    message = rejection(config)
    assert message.startswith("apps.chat.port: 5432 collides on node shared: port 5432 is already used "
                              "by sharedServices.postgres.port: set apps.chat.port to a free port")
    config["apps"]["chat"]["port"] = suggested_port(message)
    parses(config)


def test_app_port_colliding_with_the_load_balancer_is_rejected():
    config = prod()
    config["apps"]["research"]["port"] = 80
    message = rejection(config)
    assert message.startswith("apps.research.port: 80 collides on node master: port 80 is already used "
                              "by loadBalancer.httpPort")
    config["apps"]["research"]["port"] = suggested_port(message)
    parses(config)


def test_two_shared_services_on_one_port_are_rejected():
    config = prod()
    config["sharedServices"]["redis"] = {"port": 5432}
    assert rejection(config) == ("sharedServices.redis.port: 5432 collides on node shared: port 5432 is "
                                 "already used by sharedServices.postgres.port: set sharedServices.redis.port "
                                 "to a free port, e.g. 5433")


def test_load_balancer_https_port_equal_to_its_http_port_is_rejected():
    config = prod()
    config["loadBalancer"].update(httpPort=443, tls={"certificatePath": "/etc/ssl/chat.pem",
                                                     "keyPath": "/etc/ssl/chat.key"})
    message = rejection(config)
    assert message.startswith("loadBalancer.httpsPort: 443 collides on node master: port 443 is already "
                              "used by loadBalancer.httpPort")


def test_apps_may_share_a_port_on_different_nodes():
    config = prod()
    config["apps"]["research"].update(port=3000, replicas={"shared": 1}, migrationNode="shared")
    assert parses(config).apps["research"].port == 3000


# ── placement and shared services ──────────────────────────────────────────────────────────────

def test_shared_services_on_an_unknown_node_are_rejected():
    config = prod()
    config["sharedServices"]["node"] = "db"
    assert rejection(config) == "sharedServices.node: node 'db' is not under nodes (known: master, shared, slave1)"


def test_load_balancer_on_an_unknown_node_is_rejected():
    config = prod()
    config["loadBalancer"]["node"] = "edge"
    assert rejection(config) == "loadBalancer.node: node 'edge' is not under nodes (known: master, shared, slave1)"


def test_misspelt_mode_lists_the_allowed_modes():
    config = prod()
    config["sharedServices"]["mode"] = "dockr"
    assert rejection(config) == "sharedServices.mode: 'dockr' is not allowed: write 'docker' or 'external'"


def test_external_mode_without_external_endpoints_is_rejected():
    config = prod()
    config["sharedServices"]["mode"] = "external"
    message = rejection(config, ALL_SECRETS)
    assert message.startswith("sharedServices.external: missing, and mode is 'external': add external with ")


def test_external_endpoints_with_docker_mode_are_rejected():
    config = prod()
    config["sharedServices"]["external"] = EXTERNAL
    assert rejection(config) == ("sharedServices.external: is only read with mode 'external', and mode is "
                                 "'docker': set mode: external or remove external")


def test_external_mode_without_the_credentials_names_each_missing_secret():
    config = prod()
    config["sharedServices"].update(mode="external", external=EXTERNAL)
    message = rejection(config, {"postgresPassword", "redisPassword", "qdrantApiKey"})
    assert message == ("sharedServices.mode: 'external' needs the services' credentials as secrets, missing "
                       "objectStorageAccessKey, objectStorageSecretKey: pulumi config set --secret <key> ... "
                       "for each")
    assert parses(config, ALL_SECRETS).shared_services.external.postgres.host == "db.example.com"


def test_external_mode_with_an_incomplete_endpoint_names_the_missing_key():
    config = prod()
    external = copy.deepcopy(EXTERNAL)
    del external["objectStorage"]["bucket"]
    config["sharedServices"].update(mode="external", external=external)
    assert rejection(config, ALL_SECRETS) == ("sharedServices.external.objectStorage.bucket: required key is "
                                              "missing: add it (see the README's config reference)")


def test_external_mode_frees_the_shared_nodes_ports_for_apps():
    config = prod()
    config["sharedServices"].update(mode="external", external=EXTERNAL)
    config["apps"]["research"].update(port=5432, replicas={"shared": 1}, migrationNode="shared")
    assert parses(config, ALL_SECRETS).apps["research"].port == 5432


# ── pydantic's own errors, made readable ───────────────────────────────────────────────────────

def test_missing_required_key_is_named():
    config = prod()
    del config["apps"]["chat"]["hostname"]
    assert rejection(config) == ("apps.chat.hostname: required key is missing: "
                                 "add it (see the README's config reference)")


def test_port_given_as_a_string_asks_for_the_number_without_quotes():
    config = prod()
    config["apps"]["research"]["port"] = "3100"
    assert rejection(config) == "apps.research.port: '3100' is a string: write the number without quotes, e.g. 3100"


def test_node_left_empty_in_yaml_does_not_mention_python_classes():
    config = prod()
    config["nodes"]["slave1"] = None
    assert rejection(config) == ("nodes.slave1: is empty: write its keys indented below 'slave1:' "
                                 "(see the README's config reference)")


# ── end to end: the program's edge turns a mistake into Evaluation.error ─────────────────────

def assert_rejected_before_any_resource(evaluation) -> str:
    assert evaluation.resources == []
    assert evaluation.error is not None
    assert "Traceback" not in evaluation.error and 'File "' not in evaluation.error
    assert "\n" not in evaluation.error
    return evaluation.error


def test_program_rejects_an_unknown_node_before_registering_anything():
    config = prod()
    config["apps"]["chat"]["replicas"]["slave9"] = 1
    error = assert_rejected_before_any_resource(evaluate("prod", config))
    assert error == "apps.chat.replicas: node 'slave9' is not under nodes (known: master, shared, slave1)"


def test_program_rejects_an_unknown_top_level_key_before_registering_anything():
    config = local()
    config["loadBalancers"] = config.pop("loadBalancer")
    error = assert_rejected_before_any_resource(evaluate("local", config))
    assert error.startswith("openwebui-fleet:loadBalancers: unknown key: write 'loadBalancer' (known keys are ")


def test_program_rejects_a_quoted_replica_count_before_registering_anything():
    config = local()
    config["apps"]["chat"]["replicas"]["local"] = "2"
    error = assert_rejected_before_any_resource(evaluate("local", config))
    assert error == "apps.chat.replicas.local: '2' is a string: write the number without quotes, e.g. 2"


def test_program_counts_only_the_secrets_that_are_set_for_external_mode():
    config = prod()
    config["sharedServices"].update(mode="external", external=EXTERNAL)
    config["postgresPassword"] = {"secure": "v1:AAAA"}
    error = assert_rejected_before_any_resource(evaluate("prod", config))
    assert error.startswith("sharedServices.mode: 'external' needs the services' credentials as secrets, "
                            "missing redisPassword, qdrantApiKey, objectStorageAccessKey, objectStorageSecretKey")


def test_program_reads_microsoft_oauth_under_its_documented_key():
    config = prod()
    config["apps"]["chat"]["microsoftOAuth"] = {"clientId": "cid-123", "tenantId": "tid-9"}
    config["appSecrets"] = {"chat": {"microsoftClientSecret": {"secure": "v1:BBBB"}}}
    evaluation = evaluate("prod", config)
    assert evaluation.error is None
    envs = evaluation.named("chat-slave1-2", "docker:index/container:Container").inputs["envs"]
    assert "MICROSOFT_CLIENT_ID=cid-123" in envs
    assert "MICROSOFT_CLIENT_SECRET=mock-secret:appSecrets.chat.microsoftClientSecret" in envs


def test_external_object_storage_endpoint_with_a_path_says_where_the_bucket_goes():
    config = prod()
    external = copy.deepcopy(EXTERNAL)
    external["objectStorage"]["endpoint"] = "https://s3.example.com/openwebui"
    config["sharedServices"].update(mode="external", external=external)
    assert rejection(config, ALL_SECRETS) == (
        "sharedServices.external.objectStorage.endpoint: 'https://s3.example.com/openwebui' is not a bare "
        "endpoint: give scheme and host only, e.g. https://s3.example.com (the bucket goes in bucket)")


def test_health_path_without_a_leading_slash_is_rejected_with_an_example():
    config = prod()
    config["loadBalancer"]["healthPath"] = "lb-health"
    assert rejection(config) == "loadBalancer.healthPath: 'lb-health' is not a plain URL path: give e.g. /lb-health"


def test_tls_paths_must_be_absolute():
    config = prod()
    config["loadBalancer"]["tls"] = {"certificatePath": "chat.pem", "keyPath": "/etc/ssl/chat.key"}
    assert rejection(config) == ("loadBalancer.tls.certificatePath: 'chat.pem' is not an absolute path: "
                                 "give e.g. /etc/ssl/certs/chat.pem")


def test_program_names_the_key_whose_value_is_broken_json():
    config = prod()
    config["sshUser"] = "{deploy"
    error = assert_rejected_before_any_resource(evaluate("prod", config))
    assert error.startswith("openwebui-fleet:sshUser: '{deploy' starts like an object or list but is not valid JSON")


def test_an_env_variable_open_webui_does_not_read_is_refused_and_a_real_one_accepted():
    config = prod()
    config["apps"]["chat"]["env"] = {"ENABLE_SIGNUPP": "false"}
    message = rejection(config)
    assert message.startswith("apps.chat.env: 'ENABLE_SIGNUPP' is not a variable Open WebUI reads")
    config["apps"]["chat"]["env"] = {"ENABLE_SIGNUP": "false"}
    assert parses(config).apps["chat"].env == {"ENABLE_SIGNUP": "false"}


def test_tls_from_secrets_needs_both_secrets_and_docker_mode():
    config = prod()
    config["loadBalancer"]["tls"] = {}
    assert rejection(config).startswith("loadBalancer.tls: {} takes the certificate and key from secrets")
    assert parses(config, {"lbTlsCertificate", "lbTlsKey"}).load_balancer.tls.from_secrets
    config["nodes"]["master"]["sshHostKey"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    config["loadBalancer"]["mode"] = "native"
    assert rejection(config, {"lbTlsCertificate", "lbTlsKey"}).startswith(
        "loadBalancer.tls: {} (certificate from secrets) works in mode docker only")


def test_tls_paths_and_tls_secrets_together_are_refused():
    message = rejection(prod(), {"lbTlsCertificate", "lbTlsKey"})
    assert message.startswith("loadBalancer.tls: gives certificatePath and keyPath and the secrets "
                              "lbTlsCertificate, lbTlsKey are set too")


def test_tls_with_only_one_path_is_refused():
    config = prod()
    del config["loadBalancer"]["tls"]["keyPath"]
    assert rejection(config).startswith("loadBalancer.tls: give both certificatePath and keyPath, or neither")


# ── every mistake in one run, each with what to write instead ─────────────────────────────────

def test_every_mistake_of_a_file_is_reported_in_one_run_one_line_each_sorted_by_key():
    config = prod()
    config["apps"]["chat"]["port"] = "abc"
    config["apps"]["chat"]["replicas"]["slave1"] = -1
    config["sharedServices"]["mode"] = "dockr"
    config["loadBalancr"] = {"node": "master"}
    config["nodes"]["master"]["hostName"] = "m.example.com"
    # A rule across keys, on keys that validated (the LB's TLS and the secrets), runs beside them.
    config["loadBalancer"]["tls"] = {}
    lines = rejection_lines(config, {"backupAccessKeyId", "backupSecretAccessKey"})
    assert lines == [
        "apps.chat.port: 'abc' is not a whole number: write one from 1 to 65535, e.g. port: 3000",
        "apps.chat.replicas.slave1: -1 is out of range: write a number from 1 to 100, e.g. slave1: 1",
        "loadBalancer.tls: {} takes the certificate and key from secrets: pulumi config set --secret "
        "lbTlsCertificate < fullchain.pem and pulumi config set --secret lbTlsKey < privkey.pem",
        lines[3],
        "nodes.master.hostName: unknown key 'hostName': write 'host' "
        "(known keys here: host, address, dockerHost, sshUser, sshPort, memoryMb, cpus, publicAddress, sshHostKey)",
        "sharedServices.mode: 'dockr' is not allowed: write 'docker' or 'external'",
    ]
    assert lines[3].startswith("openwebui-fleet:loadBalancr: unknown key: write 'loadBalancer' (known keys are ")


def rejection_lines(config: dict[str, Any], secrets: set[str] | None = None,
                    app_secrets: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_fleet(config, set() if secrets is None else secrets, app_secrets or {})
    return str(caught.value).splitlines()


def test_rules_across_keys_run_on_what_validated_and_never_on_what_a_missing_entry_would_mislead():
    both = {"backupAccessKeyId", "backupSecretAccessKey", "analyticsAccessKeyId", "analyticsSecretAccessKey"}
    config = prod()
    config["apps"]["chat"]["port"] = "abc"                # app chat does not validate, research does:
    config["apps"]["research"]["replicas"]["slave9"] = 1  # its placement is still checked
    config["loadBalancer"]["tls"] = {}                    # the LB validated: its rule runs
    # appSecrets.chat is not judged against apps: chat is missing from the validated ones, not from the file.
    assert rejection_lines(config, both, {"chat": {"openaiApiKeys": ["sk-1"]}}) == [
        "apps.chat.port: 'abc' is not a whole number: write one from 1 to 65535, e.g. port: 3000",
        "apps.research.replicas: node 'slave9' is not under nodes (known: master, shared, slave1)",
        "loadBalancer.tls: {} takes the certificate and key from secrets: pulumi config set --secret "
        "lbTlsCertificate < fullchain.pem and pulumi config set --secret lbTlsKey < privkey.pem"]
    config = prod()
    config["nodes"]["slave1"]["sshPort"] = "x"  # slave1 exists, so chat's replicas there are not 'unknown'
    assert rejection_lines(config, both) == [
        "nodes.slave1.sshPort: 'x' is not a whole number: write one from 1 to 65535, e.g. sshPort: 22"]


@pytest.mark.parametrize("edit, line", [
    (lambda c: c["apps"]["chat"].update(port="abc"),
     "apps.chat.port: 'abc' is not a whole number: write one from 1 to 65535, e.g. port: 3000"),
    (lambda c: c["apps"]["chat"]["replicas"].update(slave1=-1),
     "apps.chat.replicas.slave1: -1 is out of range: write a number from 1 to 100, e.g. slave1: 1"),
    (lambda c: c["apps"]["chat"].update(cpus="two"),
     "apps.chat.cpus: 'two' is not a number: write one above 0 to 64, e.g. cpus: 1.0"),
    (lambda c: c["apps"]["chat"].update(useSharedOllama="maybe"),
     "apps.chat.useSharedOllama: 'maybe' is not true or false: write useSharedOllama: true or "
     "useSharedOllama: false"),
    (lambda c: c["apps"]["chat"].update(ollamaUrls="http://10.0.0.9:11434"),
     "apps.chat.ollamaUrls: 'http://10.0.0.9:11434' is not a list: write [a, b], or one '- item' line per entry"),
])
def test_each_type_mistake_ends_with_what_to_write_instead(edit, line):
    config = prod()
    edit(config)
    assert rejection(config) == line


def test_a_credential_in_plaintext_is_a_warning_that_never_shows_the_value(caplog: pytest.LogCaptureFixture):
    config = local()
    config["postgresPassword"] = "plain-text-password-value"
    config["redisPassword"] = {"secure": "v1:AAAA"}
    with caplog.at_level("WARNING"):
        ev = evaluate("local", config)
    assert ev.error is None
    said = [r.getMessage() for r in caplog.records if "plaintext" in r.getMessage()]
    assert said == ["postgresPassword is in the stack file in plaintext, readable by anyone with the repository: "
                    "store it encrypted with pulumi config set --secret postgresPassword <value> (it replaces "
                    "the plaintext line), and change the credential if the file was ever shared"]
    assert not any("plain-text-password-value" in r.getMessage() for r in caplog.records)


# ── the load balancer's edge keys and the host firewall ─────────────────────────────────────────
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


def test_shared_services_tls_is_off_by_default_and_a_strict_bool():
    assert parses(prod()).shared_services.tls is False
    for value in ("yes", 1, "true"):
        config = prod()
        config["sharedServices"]["tls"] = value
        assert rejection(config).startswith("sharedServices.tls: "), value


def test_shared_services_tls_with_external_services_is_rejected():
    config = prod()
    config["sharedServices"].update(mode="external", external=EXTERNAL, tls=True)
    assert rejection(config, ALL_SECRETS) == (
        "sharedServices.tls: true makes the services this program runs TLS-only, and mode 'external' runs none: "
        "remove tls (external services' TLS is set up where they run), or set mode: docker")


def test_shared_services_tls_with_backups_in_the_fleets_own_minio_is_rejected():
    config = prod()
    config["sharedServices"]["tls"] = True
    config["backup"].update(provider="minio", endpoint="http://10.0.5.24:9000")
    assert rejection(config, ALL_SECRETS).startswith(
        "backup.provider: 'minio' keeps backups in the fleet's own MinIO, which sharedServices.tls: true makes "
        "HTTPS-only")


def test_an_ipv6_node_address_is_refused_naming_the_key_and_the_fix():
    # Services are reached at address:port (nginx upstreams, database and Redis URLs): IPv4 only.
    config = prod()
    config["nodes"]["master"]["host"] = "fd00::14"
    assert rejection(config) == ("nodes.master.host: 'fd00::14' is an IPv6 address, and the fleet publishes "
                                 "its services on IPv4 only: give the node's IPv4 address as address")
    config["nodes"]["master"]["address"] = "192.168.1.14"
    assert parses(config).nodes["master"].bind_address == "192.168.1.14"
    config["nodes"]["master"]["address"] = "fd00::14"
    assert rejection(config).startswith("nodes.master.address: 'fd00::14' is an IPv6 address")


def test_more_replicas_of_an_app_than_the_load_balancer_holds_are_refused():
    config = prod()
    nodes = [f"n{i}" for i in range(41)]
    config["nodes"].update({n: {"host": f"10.9.{i // 250}.{i % 250 + 1}"} for i, n in enumerate(nodes)})
    config["sharedServices"]["postgres"] = {"settings": {"max_connections": "10000"}}
    config["apps"]["chat"].update(replicas={n: 100 for n in nodes}, migrationNode="n0",
                                  databasePool={"size": 1, "maxOverflow": 0}, redisConnectionsPerReplica=1)
    assert rejection(config) == ("apps.chat.replicas: 4100 in all, more than the 4000 an app's upstream in "
                                 "the load balancer holds: spread them over two apps")
    config["apps"]["chat"]["replicas"] = {n: 100 for n in nodes[:40]}
    assert sum(parses(config).apps["chat"].replicas.values()) == 4000
