"""`sharedServices.tls: true` run for real: Open WebUI 0.12.4 replicas on two nodes reach TLS-only PostgreSQL
and Redis, HTTPS Qdrant (the stub) and S3 (moto) on the shared node across the bridge, verifying them.

The fleet of Pulumi.realfleet-tls.yaml, up for this module only (first in the suite, so it is down before
the main fleet comes up: both use the same namespaces). The CA and server certificates are real ones the
runner makes for the plan's CertRequests (names and IPs as declared); everything else is the plan's own.
"""
from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from components.render.tls import CA_BUNDLE, TLS_DIR
from plan.engine import CONTAINER, evaluate, read_stack_file
from tests.realfleet import images, netns
from tests.realfleet.conftest import LiveFleet, fleet_of
from tests.realfleet.runner import STACK
from tests.realfleet.test_2_client import assert_edits_on_every_replica_reach_one_socket

TLS_CONFIG = Path(__file__).with_name("Pulumi.realfleet-tls.yaml")
# As Pulumi.realfleet-tls.yaml writes them: the shared node, and the nodes that each run one replica.
SHARED_ADDRESS = "198.18.0.10"
REPLICA_NODES = {"node-a": "198.18.0.11", "node-b": "198.18.0.12"}


@pytest.fixture(scope="module")
def tls_fleet() -> Iterator[LiveFleet]:
    if os.environ.get("REALFLEET_STATE"):
        pytest.skip("REALFLEET_STATE: a fleet is up in the namespaces the TLS fleet needs")
    with fleet_of(TLS_CONFIG) as live:
        yield live


def _replicas(fleet: LiveFleet) -> list[str]:
    return [r["resource"] for r in fleet.data["apps"]["chat"]["replicas"]]


def _postgres_sql(fleet: LiveFleet, sql: str) -> list[list[str]]:
    """`sql` as PostgreSQL's admin over the server's own socket (the container's `psql`, no TCP)."""
    res = fleet.resource("openwebui-postgres")
    env = fleet.env(res)
    socket_dir = fleet.runner.runtime["containers"][res]["health"]["env"]["PGHOST"]
    out = fleet.exec(res, ["psql", "-X", "-At", "-F", "|", "-h", socket_dir, "-U", env["POSTGRES_USER"],
                           "-d", "postgres", "-c", sql], timeout=30, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


def test_every_replica_is_healthy_and_verifies_postgres_and_redis_with_the_fleet_ca(tls_fleet) -> None:
    assert {r["node"] for r in tls_fleet.data["apps"]["chat"]["replicas"]} == set(REPLICA_NODES)
    for replica in _replicas(tls_fleet):
        assert tls_fleet.runner.healthy(replica), replica
        env = tls_fleet.env(replica)
        database = parse_qs(urlsplit(env["DATABASE_URL"]).query)
        assert database["sslmode"] == ["verify-full"]
        redis_url = urlsplit(env["REDIS_URL"])
        assert redis_url.scheme == "rediss"
        assert parse_qs(redis_url.query)["ssl_cert_reqs"] == ["required"]
        ca = Path(database["sslrootcert"][0])
        assert parse_qs(redis_url.query)["ssl_ca_certs"] == [str(ca)]
        # The file the replica trusts is the CA that signed the servers (not a placeholder).
        assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----\nMII")
        # The replica's own command appended it to the public roots, for Qdrant and S3.
        bundle = Path(env["SSL_CERT_FILE"])
        assert env["AWS_CA_BUNDLE"] == str(bundle) and bundle.read_text().endswith(ca.read_text())


def test_a_chat_made_through_the_lb_is_read_on_every_replica(tls_fleet) -> None:
    api = tls_fleet.admin("chat")
    title = f"over tls {uuid.uuid4().hex[:8]}"
    created = api.post("/api/v1/chats/new", json={"chat": {"title": title, "messages": []}})
    assert created.status_code == 200, created.text
    for replica, url in tls_fleet.replicas("chat").items():
        got = api.as_user(url).get(f"/api/v1/chats/{created.json()['id']}")
        assert got.status_code == 200 and got.json()["title"] == title, replica


def test_every_app_connection_to_postgres_comes_from_another_node_over_tls(tls_fleet) -> None:
    rows = _postgres_sql(tls_fleet, "SELECT a.client_addr, s.ssl, s.version FROM pg_stat_activity a "
                                    "JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'openwebui_chat'")
    assert {addr for addr, _, _ in rows} == set(REPLICA_NODES.values())
    assert all(ssl == "t" and version.startswith("TLSv1.") for _, ssl, version in rows), rows
    # No TCP connection of anyone is in clear text.
    clear = _postgres_sql(tls_fleet, "SELECT a.usename, a.client_addr FROM pg_stat_activity a JOIN pg_stat_ssl s "
                                     "USING (pid) WHERE a.client_addr IS NOT NULL AND NOT s.ssl")
    assert clear == []


def test_postgres_refuses_clear_text_from_an_app_node(tls_fleet) -> None:
    env = tls_fleet.env("chat-node-b-1")
    url = urlsplit(env["DATABASE_URL"])
    clear = f"postgresql://{url.netloc}{url.path}?sslmode=disable&connect_timeout=10"
    result = subprocess.run(netns.in_ns("rf-node-b", ["psql", "-X", "-Atc", "SELECT 1", clear]),
                            env=images.base_env(tls_fleet.state), capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "no encryption" in result.stderr, result.stderr
    # The same URL as declared (verify-full against the fleet CA) gets in, from the same node.
    declared = subprocess.run(netns.in_ns("rf-node-b", ["psql", "-X", "-Atc", "SELECT ssl FROM pg_stat_ssl "
                                                        "WHERE pid = pg_backend_pid()", env["DATABASE_URL"]]),
                              env=images.base_env(tls_fleet.state), capture_output=True, text=True, timeout=30)
    assert declared.stdout.strip() == "t", declared.stderr


def _redis_cli(fleet: LiveFleet, ns: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(netns.in_ns(ns, ["redis-cli", "-h", SHARED_ADDRESS, "-p", "6379", *args]),
                          env=images.base_env(fleet.state) | env, capture_output=True, text=True, timeout=30)


def test_redis_has_only_tls_clients_from_the_app_nodes_and_refuses_clear_text(tls_fleet) -> None:
    replica = tls_fleet.env("chat-node-a-1")
    redis_url = urlsplit(replica["REDIS_URL"])
    ca = parse_qs(redis_url.query)["ssl_ca_certs"][0]
    app = ["--user", redis_url.username, "--no-auth-warning"]
    password = {"REDISCLI_AUTH": redis_url.password}
    # Clear text from an app node, with the app's own user and password: no answer.
    clear = _redis_cli(tls_fleet, "rf-node-a", [*app, "PING"], password)
    assert "PONG" not in clear.stdout
    assert _redis_cli(tls_fleet, "rf-node-a", ["--tls", "--cacert", ca, *app, "PING"], password).stdout.strip() \
        == "PONG"
    # The server, asked over TLS as its admin: no clear-text port, and the app's clients are the replicas'.
    admin = ["--tls", "--cacert", ca, "--user", "fleet-admin", "--no-auth-warning"]
    admin_auth = {"REDISCLI_AUTH": tls_fleet.env(tls_fleet.resource("openwebui-redis"))["REDISCLI_AUTH"]}
    assert _redis_cli(tls_fleet, "rf-shared", [*admin, "CONFIG", "GET", "port"], admin_auth).stdout.split() \
        == ["port", "0"]
    clients = _redis_cli(tls_fleet, "rf-shared", [*admin, "CLIENT", "LIST"], admin_auth).stdout.splitlines()
    app_addresses = {dict(f.split("=", 1) for f in line.split() if "=" in f)["addr"].rsplit(":", 1)[0]
                     for line in clients if f" user={redis_url.username} " in f" {line} "}
    assert app_addresses == set(REPLICA_NODES.values())


QDRANT_AND_S3 = """
import os, sys, boto3, qdrant_client

# As open_webui/retrieval/vector/dbs/qdrant.py and storage/provider.py make their clients.
def qdrant():
    qdrant_client.QdrantClient(url=os.environ["QDRANT_URI"], api_key=os.environ["QDRANT_API_KEY"]).get_collections()

def s3():
    boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name=os.environ["S3_REGION_NAME"],
                 aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
                 aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"]).head_bucket(Bucket=os.environ["S3_BUCKET_NAME"])

qdrant()
s3()
print("verified")
# With the public roots alone (no fleet CA), the same clients must refuse both servers.
os.environ["SSL_CERT_FILE"] = os.environ["AWS_CA_BUNDLE"] = sys.argv[1]
for name, client in (("qdrant", qdrant), ("s3", s3)):
    try:
        client()
    except Exception as e:
        chain, seen = [], e
        while seen is not None:
            chain.append(repr(seen))
            seen = seen.__cause__ or seen.__context__
        print(name, "refused:", any("CERTIFICATE_VERIFY_FAILED" in c for c in chain))
    else:
        print(name, "accepted")
"""


def test_qdrant_and_s3_answer_https_that_a_replicas_clients_verify(tls_fleet) -> None:
    env = tls_fleet.env("chat-node-b-1")
    assert env["QDRANT_URI"].startswith("https://") and env["S3_ENDPOINT_URL"].startswith("https://")
    python = str(images.openwebui_venv() / "bin" / "python")
    public = subprocess.run([python, "-m", "certifi"], capture_output=True, text=True, check=True).stdout.strip()
    result = subprocess.run(netns.in_ns("rf-node-b", [python, "-c", QDRANT_AND_S3, public]), env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:3] == ["verified", "qdrant refused: True", "s3 refused: True"], result.stdout


def test_a_file_uploaded_through_the_lb_goes_to_s3_over_https_and_reads_back_on_every_replica(tls_fleet) -> None:
    api = tls_fleet.admin("chat")
    content = os.urandom(50_000)
    r = api.post("/api/v1/files/", files={"file": ("tls.bin", content, "application/octet-stream")},
                 params={"process": "false"})
    assert r.status_code == 200, r.text
    for replica, url in tls_fleet.replicas("chat").items():
        got = api.as_user(url).get(f"/api/v1/files/{r.json()['id']}/content")
        assert got.status_code == 200 and got.content == content, replica


def test_websocket_events_cross_replicas_through_redis_over_tls(tls_fleet) -> None:
    """Open WebUI's socket.io Redis manager (WEBSOCKET_REDIS_URL, rediss://): an edit on either replica
    reaches a client whose socket is held by one of them."""
    assert_edits_on_every_replica_reach_one_socket(tls_fleet, "a note over tls")


def test_every_container_runs_with_the_plans_env_with_only_tls_file_paths_moved(tls_fleet) -> None:
    """What the replicas and services ran with is the plan's env; TLS file paths alone point elsewhere
    (into the container's state dir), and every file they name holds a real PEM, not a placeholder."""
    plan = evaluate(STACK, read_stack_file(TLS_CONFIG))
    records = tls_fleet.runner.runtime["containers"]
    moved = 0
    for r in plan.of_type(CONTAINER):
        declared = dict(line.split("=", 1) for line in r.inputs.get("envs", []))
        ran = records[r.name]["launch"]["env"]
        state_dir = str(tls_fleet.state / "containers" / r.inputs["name"])
        for key, value in declared.items():
            back = ran[key].replace(f"{state_dir}/tls", TLS_DIR).replace(f"{state_dir}/ca-bundle.pem", CA_BUNDLE)
            assert back == value, (r.name, key)
            moved += ran[key] != value
        for upload in r.inputs.get("uploads", []):
            if upload["file"].startswith(TLS_DIR) and "mock" in upload["content"].lower():
                text = Path(upload["file"].replace(TLS_DIR, f"{state_dir}/tls")).read_text()
                assert "mock" not in text and "MOCK" not in text and text.startswith("-----BEGIN"), upload["file"]
    assert moved >= 2 * 4  # at least DATABASE_URL, REDIS_URL, SSL_CERT_FILE, AWS_CA_BUNDLE of each replica
