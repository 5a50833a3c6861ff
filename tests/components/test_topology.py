"""The fleet resolved once (components/topology.py), without the mock engine.

Every expected value is written out from Pulumi.prod.yaml / Pulumi.local.yaml by hand.
"""
from __future__ import annotations

import copy
from typing import Any

from components.config import parse_fleet
from components.endpoints import Endpoint, SharedEndpoints
from components.topology import NodeTopology, Replica, SshTarget, Topology, resolve
from plan.engine import stack_config

SSH_OPTS = ("-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10")


def topology_of(config: dict[str, Any]) -> Topology:
    secrets = {k for k, v in config.items() if isinstance(v, dict) and set(v) == {"secure"}}
    return resolve(parse_fleet(config, secrets, {}))


def prod() -> dict[str, Any]:
    return copy.deepcopy(stack_config("prod"))


def test_prod_nodes_are_reached_over_ssh_as_the_fleet_user() -> None:
    assert topology_of(prod()).nodes == {
        "shared": NodeTopology("shared", "ssh://deploy@10.0.5.24", SSH_OPTS, "10.0.5.24",
                               SshTarget("10.0.5.24", 22, "deploy")),
        "master": NodeTopology("master", "ssh://deploy@192.168.1.14", SSH_OPTS, "192.168.1.14",
                               SshTarget("192.168.1.14", 22, "deploy")),
        "slave1": NodeTopology("slave1", "ssh://deploy@192.168.1.21", SSH_OPTS, "192.168.1.21",
                               SshTarget("192.168.1.21", 22, "deploy")),
    }


def test_a_node_user_and_port_override_the_fleet_user_in_the_docker_url() -> None:
    config = prod()
    config["nodes"]["slave1"].update(sshUser="ops", sshPort=2222)
    node = topology_of(config).nodes["slave1"]
    assert node.docker_url == "ssh://ops@192.168.1.21:2222"
    assert node.ssh == SshTarget("192.168.1.21", 2222, "ops")


def test_local_node_uses_its_docker_host_and_has_no_ssh() -> None:
    topology = topology_of(stack_config("local"))
    assert topology.nodes == {"local": NodeTopology("local", "unix:///var/run/docker.sock", (), "127.0.0.1", None)}


def test_shared_services_are_container_names_on_their_node_and_published_ports_elsewhere() -> None:
    topology = topology_of(prod())
    assert topology.shared_node == "shared"
    assert [app.database_node for app in topology.apps.values()] == ["shared", "shared"]
    assert topology.endpoints["shared"] == SharedEndpoints(
        postgres=Endpoint("openwebui-postgres", 5432), postgres_admin_user="postgres",
        redis=Endpoint("openwebui-redis", 6379), qdrant=Endpoint("openwebui-qdrant", 6333),
        object_storage_url="http://openwebui-minio:9000", bucket="openwebui-files", region="us-east-1",
        ollama=None)
    remote = SharedEndpoints(
        postgres=Endpoint("10.0.5.24", 5432), postgres_admin_user="postgres",
        redis=Endpoint("10.0.5.24", 6379), qdrant=Endpoint("10.0.5.24", 6333),
        object_storage_url="http://10.0.5.24:9000", bucket="openwebui-files", region="us-east-1", ollama=None)
    assert topology.endpoints["master"] == topology.endpoints["slave1"] == topology.outside == remote


def test_prod_replicas_ports_and_migrating_replica() -> None:
    apps = topology_of(prod()).apps
    assert apps["chat"].replicas == (
        Replica("chat", "master", 1, "chat-master-1", "openwebui-chat-master-1", 3000, "192.168.1.14", True),
        Replica("chat", "slave1", 1, "chat-slave1-1", "openwebui-chat-slave1-1", 3000, "192.168.1.21", False),
        Replica("chat", "slave1", 2, "chat-slave1-2", "openwebui-chat-slave1-2", 3001, "192.168.1.21", False),
    )
    assert apps["research"].replicas == (
        Replica("research", "master", 1, "research-master-1", "openwebui-research-master-1", 3100,
                "192.168.1.14", True),)


def test_nginx_in_a_container_reaches_replicas_on_its_node_by_name_and_others_by_address() -> None:
    apps = topology_of(prod()).apps  # loadBalancer on master, mode docker
    assert apps["chat"].upstreams == (Endpoint("openwebui-chat-master-1", 8080),
                                      Endpoint("192.168.1.21", 3000), Endpoint("192.168.1.21", 3001))
    assert apps["research"].upstreams == (Endpoint("openwebui-research-master-1", 8080),)


def test_native_nginx_reaches_every_replica_at_its_published_port() -> None:
    config = prod()
    config["loadBalancer"]["mode"] = "native"
    assert topology_of(config).apps["chat"].upstreams == (
        Endpoint("192.168.1.14", 3000), Endpoint("192.168.1.21", 3000), Endpoint("192.168.1.21", 3001))


def test_public_urls_follow_tls_and_the_load_balancer_port() -> None:
    assert topology_of(prod()).apps["chat"].public_url == "https://chat.example.com"
    assert topology_of(stack_config("local")).apps["chat"].public_url == "http://chat.localhost:8080"


def test_without_migration_node_the_first_node_by_name_migrates() -> None:
    config = prod()
    del config["apps"]["chat"]["migrationNode"]
    config["apps"]["chat"]["replicas"] = {"slave1": 1, "master": 2}
    migrating = [(r.node, r.ordinal) for r in topology_of(config).apps["chat"].replicas if r.migrates]
    assert migrating == [("master", 1)]


def test_backup_job_dumps_every_app_in_name_order() -> None:
    config = prod()
    config["apps"]["ask"] = {"hostname": "ask.example.com", "port": 3200, "replicas": {"slave1": 1}}
    assert topology_of(config).backup_apps == ("ask", "chat", "research")
