"""Which container holds which credential, under the mock engine (issue 10, least privilege).

Every generated secret is recognisable (MOCK-GENERATED-SECRET-<resource name>), so each test asks
where one value went. The real services' enforcement of these users is tested in tests/render/.
"""
from __future__ import annotations

import copy
import json

import pytest

from fleet_queries import CONTAINER, env, labels, replicas_of
from plan.engine import GENERATED_PREFIX, Evaluation, evaluate, stack_config

# Generated before the components named their children (the mocks keep the first name).
ROOT_KEYS = (f"{GENERATED_PREFIX}object-storage-access-key", f"{GENERATED_PREFIX}object-storage-secret-key")


def holders(ev: Evaluation, needle: str) -> set[str]:
    """Containers whose environment holds `needle`."""
    return {c.name for c in ev.of_type(CONTAINER) if any(needle in v for v in env(c).values())}


def test_the_object_storage_root_keys_reach_only_minio_and_its_setup_step(stack: Evaluation) -> None:
    for key in ROOT_KEYS:
        assert holders(stack, key) == {"shared-minio", "shared-object-storage-bucket"}, key


def test_each_app_has_its_own_object_storage_user_limited_to_its_prefix(stack: Evaluation) -> None:
    setup = stack.named("shared-object-storage-bucket", CONTAINER)
    policies = {u["file"]: json.loads(u["content"]) for u in setup.inputs["uploads"]}
    for app in stack.config["apps"]:
        secret = f"{GENERATED_PREFIX}shared-object-storage-openwebui-{app}-secret-key"
        assert holders(stack, secret) == {c.name for c in replicas_of(stack, app)} | {setup.name}
        assert {env(c)["S3_ACCESS_KEY_ID"] for c in replicas_of(stack, app)} == {f"openwebui-{app}"}
        resources = {r for s in policies[f"/policies/openwebui-app-{app}.json"]["Statement"] for r in s["Resource"]}
        assert resources == {"arn:aws:s3:::openwebui-files", f"arn:aws:s3:::openwebui-files/apps/{app}/*"}


def test_the_backup_job_has_its_own_object_storage_user(stack: Evaluation) -> None:
    job = env(stack.named("backup", CONTAINER))
    secret = f"{GENERATED_PREFIX}shared-object-storage-openwebui-backup-secret-key"
    assert job["FILES_AWS_ACCESS_KEY_ID"] == "openwebui-backup" and job["FILES_AWS_SECRET_ACCESS_KEY"] == secret
    assert holders(stack, secret) == {"backup", "shared-object-storage-bucket"}
    if stack.stack == "local":  # backups go to the fleet's own MinIO: the same user writes them
        assert (job["AWS_ACCESS_KEY_ID"], job["AWS_SECRET_ACCESS_KEY"]) == ("openwebui-backup", secret)
    else:
        assert job["AWS_SECRET_ACCESS_KEY"] == "mock-secret:backupSecretAccessKey"


def test_the_report_job_holds_no_backup_key(stack: Evaluation) -> None:
    backup_keys = {f"{GENERATED_PREFIX}shared-object-storage-openwebui-backup-secret-key", *ROOT_KEYS,
                   "mock-secret:backupAccessKeyId", "mock-secret:backupSecretAccessKey"}
    job = env(stack.named("analytics", CONTAINER))
    assert not {key for key in backup_keys if any(key in value for value in job.values())}
    if stack.stack == "local":  # its own MinIO user, created by the setup step, limited to reports/
        secret = f"{GENERATED_PREFIX}shared-object-storage-openwebui-reports-secret-key"
        assert (job["AWS_ACCESS_KEY_ID"], job["AWS_SECRET_ACCESS_KEY"]) == ("openwebui-reports", secret)
        assert holders(stack, secret) == {"analytics", "shared-object-storage-bucket"}
        setup = stack.named("shared-object-storage-bucket", CONTAINER)
        policy = next(json.loads(u["content"]) for u in setup.inputs["uploads"]
                      if u["file"] == "/policies/openwebui-reports.json")
        bucket = stack.config["backup"]["bucket"]
        assert {r for s in policy["Statement"] for r in s["Resource"]} == {
            f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/reports/*"}
    else:  # an external store: the keys the operator made for it
        assert (job["AWS_ACCESS_KEY_ID"], job["AWS_SECRET_ACCESS_KEY"]) == (
            "mock-secret:analyticsAccessKeyId", "mock-secret:analyticsSecretAccessKey")


def test_each_app_has_its_own_redis_user_and_the_admin_password_stays_with_redis(stack: Evaluation) -> None:
    assert holders(stack, f"{GENERATED_PREFIX}redis-password") == {"shared-redis", "shared-redis-users"}
    for app in stack.config["apps"]:
        password = f"{GENERATED_PREFIX}shared-redis-{app}-password"
        assert holders(stack, password) == {c.name for c in replicas_of(stack, app)}
        for replica in replicas_of(stack, app):
            assert env(replica)["REDIS_URL"].startswith(f"redis://app-{app}:{password}@")
            assert env(replica)["REDIS_KEY_PREFIX"] == f"open-webui-{app}"


def test_the_redis_acl_file_names_each_app_prefix_and_holds_no_password(stack: Evaluation) -> None:
    acl = stack.named("shared-redis-users", CONTAINER).inputs["uploads"][0]["content"]
    assert GENERATED_PREFIX not in acl and "mock-secret" not in acl
    for app in stack.config["apps"]:
        rule = next(line for line in acl.splitlines() if line.startswith(f"user app-{app} "))
        assert f" ~open-webui-{app}:* " in rule and f" &open-webui-{app}:* " in rule
        assert " -@dangerous " in rule and " -@admin " in rule


def ollama_config() -> dict:
    config = copy.deepcopy(stack_config("prod"))
    config["sharedServices"]["ollama"] = {"enabled": True}
    config["apps"]["research"].update(replicas={"shared": 1}, migrationNode="shared", useSharedOllama=True)
    return config


def test_ollama_is_published_on_the_shared_nodes_loopback_only() -> None:
    ev = evaluate("prod", ollama_config())
    assert ev.error is None, ev.error
    ports = ev.named("shared-ollama", CONTAINER).inputs["ports"]
    assert [p["ip"] for p in ports] == ["127.0.0.1"]
    research = replicas_of(ev, "research")
    assert [env(c)["OLLAMA_BASE_URLS"] for c in research] == ["http://openwebui-ollama:11434"]
    assert "ollama" not in ev.outputs["sharedServices"]


def test_an_app_with_replicas_off_the_shared_node_cannot_use_the_shared_ollama() -> None:
    config = ollama_config()
    config["apps"]["research"].update(replicas={"shared": 1, "master": 1})
    error = evaluate("prod", config).error
    assert error is not None and error.startswith("apps.research.useSharedOllama: true, but replicas on master "
                                                  "cannot reach the shared Ollama")


@pytest.mark.parametrize("key", ["redisPassword", "objectStorageSecretKey"])
def test_external_services_share_one_credential_between_apps(key: str) -> None:
    """What the README says plainly: the program cannot create users in services it does not run."""
    config = copy.deepcopy(stack_config("prod"))
    config["sharedServices"] = {"node": "shared", "mode": "external", "external": {
        "postgres": {"host": "10.0.9.1"}, "redis": {"host": "10.0.9.2"}, "qdrant": {"host": "10.0.9.3"},
        "objectStorage": {"endpoint": "https://s3.internal", "bucket": "webui-files"}}}
    for secret in ("postgresPassword", "redisPassword", "qdrantApiKey", "objectStorageAccessKey",
                   "objectStorageSecretKey"):
        config[secret] = {"secure": "AAAB"}
    ev = evaluate("prod", config)
    assert ev.error is None, ev.error
    assert {labels(c)["openwebui-fleet.app"] for c in ev.of_type(CONTAINER)
            if "openwebui-fleet.app" in labels(c) and any(f"mock-secret:{key}" in v or f"mock-secret%3A{key}" in v
                                                          for v in env(c).values())} == {"chat", "research"}
