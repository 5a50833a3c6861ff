"""The backup bucket and job as each stack declares them, wired to the same fleet the job backs up."""
from __future__ import annotations

import copy
import re

import pytest

from components.render.postgres import app_database
from fleet_analytics.columns import COLUMNS_READ
from fleet_backup.settings import App as JobApp
from fleet_backup.settings import Settings, signing_key
from fleet_queries import CONTAINER, env, node_of, plaintext_leaks, replicas_of, secret_needles
from plan.engine import BUCKET, IMAGE, PROJECT_DIR, Evaluation, evaluate, is_secret
from project_copy import copy_project, evaluate_copies



def test_backup_job_runs_on_the_shared_node_on_its_schedule_for_every_app(stack: Evaluation) -> None:
    job = stack.named("backup", CONTAINER)
    backup = stack.config["backup"]
    assert node_of(stack, job) == stack.config["sharedServices"]["node"]
    assert job.inputs["command"] == ["schedule", "--cron", backup.get("schedule", "0 2 * * *")]
    e = env(job)
    assert e["BACKUP_APPS"].split(",") == sorted(stack.config["apps"])
    assert e["BACKUP_S3_BUCKET"] == backup["bucket"] and e["BACKUP_STACK"] == stack.stack
    assert e["PGHOST"] == "openwebui-postgres" and e["QDRANT_URL"] == "http://openwebui-qdrant:6333"
    assert e["BACKUP_S3_ENDPOINT"] == backup.get("jobEndpoint", backup.get("endpoint"))
    assert is_secret(job.raw_inputs["envs"])
    assert plaintext_leaks(job.raw_inputs, secret_needles(stack)) == []


def test_the_job_reads_the_env_the_program_gives_it(stack: Evaluation) -> None:
    """The job's own settings parser accepts exactly the environment the container gets."""
    job_env = env(stack.named("backup", CONTAINER))
    settings = Settings.from_env(job_env)
    assert [a.name for a in settings.apps] == sorted(stack.config["apps"])
    assert settings.prefix == f"backups/{stack.stack}/"
    settings.require_postgres(job_env)  # its own login and every app's password are there
    assert len(signing_key(job_env)) >= 32


def test_the_job_logs_in_as_its_own_role_and_dumps_each_app_with_that_apps_password(stack: Evaluation) -> None:
    job_env = env(stack.named("backup", CONTAINER))
    role = stack.named("backup-database-role", CONTAINER)
    admin = env(stack.named("shared-postgres", CONTAINER))
    assert job_env["PGUSER"] == "fleet_backup" != admin["POSTGRES_USER"]
    assert job_env["PGPASSWORD"] == env(role)["BACKUP_DB_PASSWORD"] != admin["POSTGRES_PASSWORD"]
    assert env(role)["APP_ROLES"].split(",") == ["openwebui_" + a.replace("-", "_") for a in sorted(stack.config["apps"])]
    assert stack.named("backup-database-role", CONTAINER).urn in stack.named("backup", CONTAINER).dependencies
    for app in stack.config["apps"]:
        url = env(replicas_of(stack, app)[0])["DATABASE_URL"]
        password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        assert job_env[JobApp(app).password_env] == password


def test_the_job_is_healthchecked_and_publishes_its_metrics_on_the_shared_nodes_address(stack: Evaluation) -> None:
    job = stack.named("backup", CONTAINER)
    assert job.inputs["healthcheck"]["tests"] == ["CMD", "python", "-m", "fleet_backup", "health"]
    (port,) = job.inputs["ports"]
    node = stack.config["nodes"][stack.config["sharedServices"]["node"]]
    assert port["ip"] == node.get("address", node.get("host"))
    assert port["external"] == stack.config["backup"].get("metricsPort", 9464) and port["internal"] == 9464
    assert env(job)["BACKUP_METRICS_PORT"] == "9464"


# Written out: the role and database each app gets, and where its uploaded files live.
DATABASES = {"chat": ("openwebui_chat", "openwebui_chat"), "research": ("openwebui_research", "openwebui_research"),
             "docs-team": ("openwebui_docs_team", "openwebui_docs_team")}


def test_an_app_gets_one_role_and_database_named_after_it() -> None:
    # The bootstrap names them as the job does (it dumps and restores them): one source, checked here.
    assert {app: app_database(app) for app in DATABASES} == DATABASES
    assert {app: (JobApp(app).role, JobApp(app).database) for app in DATABASES} == DATABASES


def test_job_and_replicas_agree_on_database_and_collection_names(stack: Evaluation) -> None:
    for app in stack.config["apps"]:
        job_app = JobApp(app)
        for replica in replicas_of(stack, app):
            assert env(replica)["DATABASE_URL"].split("?")[0].endswith("/" + DATABASES[app][1])
            assert env(replica)["S3_KEY_PREFIX"] == f"apps/{app}"
            assert job_app.collection_prefix == env(replica)["QDRANT_COLLECTION_PREFIX"] + "_"
            settings = Settings.from_env(env(stack.named("backup", CONTAINER)))
            assert settings.files is not None
            assert settings.files.prefix(job_app) == env(replica)["S3_KEY_PREFIX"] + "/"
            assert settings.files.bucket == env(replica)["S3_BUCKET_NAME"]
            assert settings.files.endpoint == "http://openwebui-minio:9000", "the job is on the shared node"


def test_each_stacks_backup_prefix_is_covered_by_a_retention_rule(stack: Evaluation) -> None:
    prefixes = [rule["prefix"] for rule in stack.config["backup"]["retention"]]
    assert any(f"backups/{stack.stack}/".startswith(p) for p in prefixes)


def test_backup_bucket_is_protected_and_its_provider_points_at_the_configured_endpoint(stack: Evaluation) -> None:
    (bucket,) = stack.of_type(BUCKET)
    assert bucket.inputs["bucket"] == stack.config["backup"]["bucket"]
    assert bucket.protect and bucket.retain_on_delete
    provider = stack.by_urn()[bucket.provider_urn]
    assert stack.config["backup"]["endpoint"] in provider.inputs["endpoints"]
    assert is_secret(provider.raw_inputs["secretKey"])


def test_local_backups_use_the_fleets_own_minio_and_wait_for_it(local: Evaluation) -> None:
    (bucket,) = local.of_type(BUCKET)
    assert local.named("shared-minio", CONTAINER).urn in bucket.dependencies
    provider = local.by_urn()[bucket.provider_urn]
    assert provider.inputs["accessKey"] == env(local.named("shared-minio", CONTAINER))["MINIO_ROOT_USER"]


@pytest.mark.parametrize("provider", ["aws", "generic"])
def test_a_store_other_than_the_fleets_minio_needs_its_own_credentials(local: Evaluation, provider: str) -> None:
    config = copy.deepcopy(local.config)
    config["backup"] = {"bucket": "b-ok", "provider": provider, "retention": [{"prefix": "backups/", "days": 3}]}
    del config["analytics"]  # it too needs keys of its own there (tests/components/test_analytics_job.py)
    if provider != "aws":
        config["backup"]["endpoint"] = "https://s3.example.org"
    ev = evaluate("local", config)
    assert ev.error is not None and ev.error.startswith("backup: needs the store's credentials")
    assert ev.resources == []


def test_backup_image_is_built_from_this_repository_and_tagged_by_its_content(stack: Evaluation) -> None:
    image = stack.named("backup-image", IMAGE)
    assert re.fullmatch(r"openwebui-fleet-backup:[0-9a-f]{16}", image.inputs["name"])
    # A relative context: evaluating from another checkout path changes nothing.
    assert image.inputs["build"]["context"] == "."
    assert image.inputs["build"]["dockerfile"] == "fleet_backup/Dockerfile"
    assert stack.named("backup", CONTAINER).inputs["image"] == image.state["imageId"]


def test_the_dockerfile_copies_only_from_fleet_backup() -> None:
    """What the tag hashes (fleet_backup/) is all the image is built from."""
    dockerfile = (PROJECT_DIR / "fleet_backup" / "Dockerfile").read_text()
    copied = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith(("COPY", "ADD"))]
    assert copied and all(src.startswith("fleet_backup") for sources in copied for src in sources), copied


# An edit to the job's code or recipe must rebuild its image; an edit anywhere else must not.
EDITS = {"the job's code": ("fleet_backup/cli.py", True), "the job's Dockerfile": ("fleet_backup/Dockerfile", True),
         "the job's requirements": ("fleet_backup/requirements.txt", True),
         "a renderer": ("components/render/nginx.py", False), "the README": ("README.md", False)}


@pytest.fixture(scope="module")
def backup_tags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The backup image's name as each edited copy of the project registers it (plus an unedited one)."""
    root = tmp_path_factory.mktemp("image-tag")
    projects = {"unedited": copy_project(root / "unedited"), "unedited elsewhere": copy_project(root / "x" / "y")}
    for edit, (path, _) in EDITS.items():
        projects[edit] = copy_project(root / edit.replace(" ", "-").replace("'", ""))
        with (projects[edit] / path).open("a") as f:
            f.write("\n# an edit\n")
    evaluations = evaluate_copies(list(projects.values()), "local")
    return {edit: ev.named("backup-image", IMAGE).inputs["name"] for edit, ev in zip(projects, evaluations)}


def test_only_an_edit_to_the_jobs_files_changes_the_image_tag(backup_tags: dict[str, str]) -> None:
    assert backup_tags["unedited elsewhere"] == backup_tags["unedited"], "the tag is content, not path"
    changed = {edit for edit in EDITS if backup_tags[edit] != backup_tags["unedited"]}
    assert changed == {edit for edit, (_, rebuilds) in EDITS.items() if rebuilds}


def test_keep_last_and_verify_schedule_reach_the_job(local: Evaluation) -> None:
    config = copy.deepcopy(local.config)
    config["backup"] = {**config["backup"], "keepLast": 7, "verifySchedule": "0 5 * * 0"}
    job = evaluate("local", config).named("backup", CONTAINER)
    assert env(job)["BACKUP_KEEP_LAST"] == "7"
    assert "BACKUP_COPY_S3_BUCKET" not in env(job)
    assert job.inputs["command"][-2:] == ["--verify-cron", "0 5 * * 0"]
    assert "BACKUP_KEEP_LAST" not in env(local.named("backup", CONTAINER))


def test_webhook_encryption_and_signing_keys_from_stack_secrets_reach_the_job_only_as_secrets(prod: Evaluation) -> None:
    config = copy.deepcopy(prod.config)
    for key in ("backupWebhookUrl", "backupEncryptionKey", "backupSigningKey"):
        config[key] = {"secure": f"placeholder-{key}"}
    ev = evaluate("prod", config)
    job = ev.named("backup", CONTAINER)
    e = env(job)
    assert {e["BACKUP_WEBHOOK_URL"], e["BACKUP_ENCRYPTION_KEY"], e["BACKUP_SIGNING_KEY"]} <= {
        v for v in e.values() if v.startswith("mock-secret:")}
    assert "backup-signing-key" not in {r.name for r in ev.resources}  # given, so not generated
    assert is_secret(job.raw_inputs["envs"]) and plaintext_leaks(job.raw_inputs, secret_needles(ev)) == []
    assert "BACKUP_ENCRYPTION_KEY" not in env(prod.named("backup", CONTAINER))  # off unless given


def test_copy_to_reaches_the_job_with_its_own_keys_as_secrets(prod: Evaluation) -> None:
    config = copy.deepcopy(prod.config)
    config["backup"] = {**config["backup"], "copyTo": {"bucket": "offsite-b", "endpoint": "https://s3.example.net",
                                                       "region": "eu-west-1"}}
    config["backupCopyAccessKeyId"] = {"secure": "copy-id"}
    config["backupCopySecretAccessKey"] = {"secure": "copy-secret"}
    ev = evaluate("prod", config)
    e = env(ev.named("backup", CONTAINER))
    assert (e["BACKUP_COPY_S3_BUCKET"], e["BACKUP_COPY_S3_ENDPOINT"], e["BACKUP_COPY_S3_REGION"]) == (
        "offsite-b", "https://s3.example.net", "eu-west-1")
    assert e["BACKUP_COPY_AWS_ACCESS_KEY_ID"].startswith("mock-secret:")
    assert Settings.from_env(e).copy_to is not None


def test_the_job_reads_the_reports_columns_a_restore_grants(local: Evaluation) -> None:
    """What fleet_analytics/columns.py lists is what the job re-grants after a restore, table by table."""
    settings = Settings.from_env(env(local.named("backup", CONTAINER)))
    assert settings.report_columns == COLUMNS_READ
    assert settings.report_columns["chat_message"] == ("role", "model_id", "created_at", "usage", "user_id")
