"""`sharedServices.tls: true` as each stack declares it: TLS-only services with certificates from the
fleet CA, every client verifying them, and the private keys only in their own service's files.

The URLs are read back with the clients' own parsers (libpq's conninfo, redis-py's from_url): what
Open WebUI's engine and socket.io manager hand to those libraries is what is checked here.
"""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import psycopg
import pytest
import redis

from fleet_queries import CONTAINER, env, labels, plaintext_leaks, replicas_of, secret_needles
from plan.engine import GENERATED_PREFIX, Evaluation, Registered, evaluate
from policy.fleet_policies import validate_image_pinned, validate_no_plaintext_secret_envs, validate_ports_bound_to_node
from policy_args import resource_args, run
from test_secrets_never_printed import argv_expansions, secret_env_names
from tls_stack import with_tls

CA_PATH = "/etc/openwebui-fleet/tls/ca.crt"
SERVICES = {"shared-postgres": "openwebui-postgres", "shared-redis": "openwebui-redis",
            "shared-qdrant": "openwebui-qdrant", "shared-minio": "openwebui-minio"}
TLS_TYPES = ("tls:index/privateKey:PrivateKey", "tls:index/selfSignedCert:SelfSignedCert",
             "tls:index/certRequest:CertRequest", "tls:index/locallySignedCert:LocallySignedCert")


@pytest.fixture(scope="module", params=["local", "prod"])
def tls_stack(request: pytest.FixtureRequest) -> Evaluation:
    ev = evaluate(request.param, with_tls(request.param))
    assert ev.error is None, ev.error
    return ev


def uploads(container: Registered) -> dict[str, str]:
    return {u["file"]: u["content"] for u in container.inputs.get("uploads") or []}


def ca_pem(ev: Evaluation) -> str:
    return ev.named("shared-tls-ca", "tls:index/selfSignedCert:SelfSignedCert").state["certPem"]


def certificate_names(ev: Evaluation, container: str) -> set[str]:
    request = ev.named(f"shared-tls-{container}-request", "tls:index/certRequest:CertRequest").inputs
    return set(request.get("dnsNames", [])) | set(request.get("ipAddresses", []))


def assert_trusts_the_fleet_ca(ev: Evaluation, container: Registered, path: str) -> None:
    assert uploads(container).get(path) == ca_pem(ev), (container.name, path)


def test_every_replica_verifies_postgres_and_redis_by_name_against_the_fleet_ca(tls_stack: Evaluation) -> None:
    for app in tls_stack.config["apps"]:
        for replica in replicas_of(tls_stack, app):
            e = env(replica)
            conninfo = psycopg.conninfo.conninfo_to_dict(e["DATABASE_URL"])
            assert conninfo["sslmode"] == "verify-full"
            assert_trusts_the_fleet_ca(tls_stack, replica, conninfo["sslrootcert"])
            assert conninfo["host"] in certificate_names(tls_stack, "openwebui-postgres")
            for name in ("REDIS_URL", "WEBSOCKET_REDIS_URL"):
                pool = redis.ConnectionPool.from_url(e[name])
                assert pool.connection_class is redis.SSLConnection, name
                kwargs = pool.connection_kwargs
                assert kwargs["ssl_cert_reqs"] == "required"
                assert_trusts_the_fleet_ca(tls_stack, replica, kwargs["ssl_ca_certs"])
                assert kwargs["host"] in certificate_names(tls_stack, "openwebui-redis")


def test_every_replica_reaches_qdrant_and_minio_over_https_trusting_the_ca_beside_the_public_roots(
        tls_stack: Evaluation) -> None:
    for app in tls_stack.config["apps"]:
        for replica in replicas_of(tls_stack, app):
            e = env(replica)
            for name, service in (("QDRANT_URI", "openwebui-qdrant"), ("S3_ENDPOINT_URL", "openwebui-minio")):
                url = urlsplit(e[name])
                assert url.scheme == "https" and url.hostname in certificate_names(tls_stack, service), name
            # httpx (Qdrant) reads SSL_CERT_FILE, boto3 AWS_CA_BUNDLE: one bundle the command writes
            # from certifi's roots and the uploaded CA before starting the image's own command.
            bundle = e["SSL_CERT_FILE"]
            assert e["AWS_CA_BUNDLE"] == bundle
            script = replica.inputs["command"][2]
            assert replica.inputs["command"][:2] == ["bash", "-c"]
            assert script == f'cat "$(python -m certifi)" {CA_PATH} > {bundle} && exec bash start.sh'
            assert_trusts_the_fleet_ca(tls_stack, replica, CA_PATH)


def test_the_one_shot_steps_and_jobs_verify_what_they_reach(tls_stack: Evaluation) -> None:
    # Every container that reaches PostgreSQL over TCP: the bootstrap and grant steps, and both jobs.
    clients = [c for c in tls_stack.of_type(CONTAINER) if "PGHOST" in env(c)]
    apps = tls_stack.config["apps"]
    assert {c.name for c in clients} >= {"backup", "analytics", *(f"{a}-database" for a in apps),
                                          *(f"{a}-analytics-grants" for a in apps)}
    for step in clients:
        e = env(step)
        assert e["PGSSLMODE"] == "verify-full", step.name
        assert_trusts_the_fleet_ca(tls_stack, step, e["PGSSLROOTCERT"])
        assert e["PGHOST"] in certificate_names(tls_stack, "openwebui-postgres")
    job = env(tls_stack.named("backup", CONTAINER))
    assert_trusts_the_fleet_ca(tls_stack, tls_stack.named("backup", CONTAINER), job["FLEET_CA_FILE"])
    for name, service in (("QDRANT_URL", "openwebui-qdrant"), ("FILES_S3_ENDPOINT", "openwebui-minio")):
        url = urlsplit(job[name])
        assert url.scheme == "https" and url.hostname in certificate_names(tls_stack, service), name
    users = tls_stack.named("shared-redis-users", CONTAINER)
    assert f"redis-cli --tls --cacert {CA_PATH} -h openwebui-redis" in users.inputs["command"][0]
    assert_trusts_the_fleet_ca(tls_stack, users, CA_PATH)
    setup = tls_stack.named("shared-object-storage-bucket", CONTAINER)
    assert env(setup)["MC_HOST_fleet"].startswith("https://") and env(setup)["SSL_CERT_FILE"] == CA_PATH
    assert_trusts_the_fleet_ca(tls_stack, setup, CA_PATH)


def test_the_services_refuse_clear_text(tls_stack: Evaluation) -> None:
    postgres = tls_stack.named("shared-postgres", CONTAINER)
    command = postgres.inputs["command"]
    assert {"ssl=on", "hba_file=/etc/openwebui-fleet/tls/pg_hba.conf"} <= set(command)
    hba = uploads(postgres)["/etc/openwebui-fleet/tls/pg_hba.conf"]
    assert "hostssl   all       all   all      scram-sha-256" in hba and "host      all       all   all      reject" in hba
    # The server settings from the stack are still there, as their own argv words.
    assert "max_connections=500" in command or tls_stack.stack == "local"
    redis_argv = tls_stack.named("shared-redis", CONTAINER).inputs["command"]
    assert redis_argv[redis_argv.index("--port") + 1] == "0"
    assert redis_argv[redis_argv.index("--tls-port") + 1] == "6379"
    assert "--tls" in tls_stack.named("shared-redis", CONTAINER).inputs["healthcheck"]["tests"][1]
    assert env(tls_stack.named("shared-qdrant", CONTAINER))["QDRANT__SERVICE__ENABLE_TLS"] == "true"
    minio = tls_stack.named("shared-minio", CONTAINER)
    assert minio.inputs["command"] == ["server", "--certs-dir", "/etc/openwebui-fleet/tls/minio", "/data"]
    assert {"/etc/openwebui-fleet/tls/minio/public.crt", "/etc/openwebui-fleet/tls/minio/private.key"} <= set(uploads(minio))
    assert "https://localhost:9000" in minio.inputs["healthcheck"]["tests"][1]


def test_each_certificate_names_the_container_and_the_node_address_and_is_signed_by_the_fleet_ca(
        tls_stack: Evaluation) -> None:
    shared_node = tls_stack.config["sharedServices"]["node"]
    address = tls_stack.config["nodes"][shared_node].get("address") or tls_stack.config["nodes"][shared_node]["host"]
    for resource, container in SERVICES.items():
        assert {container, address} <= certificate_names(tls_stack, container)
        cert = tls_stack.named(f"shared-tls-{container}", "tls:index/locallySignedCert:LocallySignedCert").inputs
        assert cert["caCertPem"] == ca_pem(tls_stack)
        assert "server_auth" in cert["allowedUses"]
        served = uploads(tls_stack.named(resource, CONTAINER))
        assert cert_of(tls_stack, container) in served.values()
    ca = tls_stack.named("shared-tls-ca", "tls:index/selfSignedCert:SelfSignedCert").inputs
    assert ca["isCaCertificate"] is True and "cert_signing" in ca["allowedUses"]


def cert_of(ev: Evaluation, container: str) -> str:
    return ev.named(f"shared-tls-{container}", "tls:index/locallySignedCert:LocallySignedCert").state["certPem"]


def test_the_ca_key_and_certificate_are_protected(tls_stack: Evaluation) -> None:
    assert tls_stack.named("shared-tls-ca-key", TLS_TYPES[0]).protect
    assert tls_stack.named("shared-tls-ca", TLS_TYPES[1]).protect


def test_a_private_key_reaches_only_its_own_service_and_only_as_a_secret_file(tls_stack: Evaluation) -> None:
    keys = {r.name: r.state["privateKeyPem"] for r in tls_stack.of_type(TLS_TYPES[0]) if r.name.startswith("shared-tls-")}
    assert set(keys) == {"shared-tls-ca-key", *(f"shared-tls-{c}-key" for c in SERVICES.values())}
    assert all(k.startswith(GENERATED_PREFIX) for k in keys.values())
    for container in tls_stack.of_type(CONTAINER):
        inputs = container.inputs
        visible = json.dumps([inputs.get("envs"), inputs.get("command"), inputs.get("entrypoints"),
                              labels(container), inputs.get("healthcheck")])
        assert not any(k in visible for k in keys.values()), container.name
        own = SERVICES.get(container.name)
        held = {name for upload in inputs.get("uploads") or [] for name, key in keys.items() if key in upload["content"]}
        assert held == ({f"shared-tls-{own}-key"} if own else set()), container.name
        # Where a key is uploaded, Pulumi keeps it secret (state, diffs, logs).
        assert plaintext_leaks(container.raw_inputs.get("uploads"), list(keys.values())) == [], container.name
    assert not any(k in json.dumps(tls_stack.outputs) for k in keys.values())


def test_with_tls_off_no_certificate_exists_and_no_client_changes(stack: Evaluation) -> None:
    assert not [r.name for r in stack.resources if r.type in TLS_TYPES and r.name.startswith("shared-tls")]
    for container in stack.of_type(CONTAINER):
        assert not any("/etc/openwebui-fleet/tls" in u["file"] for u in container.inputs.get("uploads") or [])
    for app in stack.config["apps"]:
        for replica in replicas_of(stack, app):
            e = env(replica)
            assert e["REDIS_URL"].startswith("redis://") and "sslmode" not in e["DATABASE_URL"]
            assert "SSL_CERT_FILE" not in e and replica.inputs.get("command") is None


def test_the_policy_pack_passes_with_tls_on(tls_stack: Evaluation) -> None:
    rules = [validate_image_pinned, validate_ports_bound_to_node, validate_no_plaintext_secret_envs]
    assert [(r.name, m) for r in tls_stack.resources for rule in rules
            for m, _ in run(rule, resource_args(tls_stack, r, True))] == []


def test_no_command_line_holds_or_expands_a_secret_with_tls_on(tls_stack: Evaluation) -> None:
    needles = secret_needles(tls_stack)
    for container in tls_stack.of_type(CONTAINER):
        argv = [*(container.inputs.get("entrypoints") or []), *(container.inputs.get("command") or [])]
        health = (container.inputs.get("healthcheck") or {}).get("tests") or []
        assert not [a for a in argv + health if any(n in a for n in needles)], container.name
        scripts = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-c"] + health[1:]
        assert argv_expansions("\n".join(scripts), secret_env_names(container, needles)) == [], container.name
