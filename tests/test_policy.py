"""The policy pack (policy/): every rule passes on both stacks' registered resources and fails on bad ones."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel, PolicyProviderResource, StackValidationArgs, StackValidationPolicy
from pulumi_policy.policy import _PolicyAnalyzerServicer

from fleet_queries import CONTAINER, IMAGE
from plan.engine import Evaluation, evaluate, is_secret, stack_config
from policy.fleet_policies import (
    BACKUP_BUCKET,
    BUCKET,
    ENCRYPTION,
    LIFECYCLE,
    POLICIES,
    PUBLIC_ACCESS_BLOCK,
    VERSIONING,
    image_pin_problem,
    validate_backup_buckets,
    validate_image_pinned,
    validate_no_plaintext_secret_envs,
    validate_ports_bound_to_node,
)
from policy_args import fake_args, fake_resource, resource_args, run, stack_args

POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"
RESOURCE_RULES = [validate_image_pinned, validate_ports_bound_to_node, validate_no_plaintext_secret_envs]
SHA = "sha256:" + "ab" * 32


def violations_on(ev: Evaluation, keep_secrets: bool = True) -> list[tuple[str, str]]:
    return [(r.name, message) for r in ev.resources for rule in RESOURCE_RULES
            for message, _ in run(rule, resource_args(ev, r, keep_secrets))]


# ---- both stacks pass ------------------------------------------------------------------------

def test_resource_policies_pass_on_every_registered_resource(stack: Evaluation) -> None:
    assert stack.error is None
    assert violations_on(stack) == []


def test_policies_had_something_to_check(stack: Evaluation) -> None:
    """Zero violations means something only if images, built images, ports and secret envs were seen."""
    images = stack.of_type(IMAGE)
    containers = stack.of_type(CONTAINER)
    assert any("build" in i.inputs for i in images) and any("build" not in i.inputs for i in images)
    assert any(c.inputs.get("ports") for c in containers)
    assert any(is_secret(c.raw_inputs.get("envs")) for c in containers)


def test_backup_bucket_policy_passes(stack: Evaluation) -> None:
    args = stack_args(stack)
    assert [r for r in args.resources if r.resource_type == BUCKET]
    assert run(validate_backup_buckets, args) == []


# ---- images ------------------------------------------------------------------------------------

@pytest.mark.parametrize("ref", [
    "nginx:latest", "nginx", "nginx:stable", "nginx:mainline-alpine", "ghcr.io/open-webui/open-webui:main",
    "ghcr.io/open-webui/open-webui:dev", "localhost:5000/app", "redis:alpine", "postgres@sha256:abc",
])
def test_unpinned_image_is_a_violation(ref: str) -> None:
    found = run(validate_image_pinned, fake_args(IMAGE, {"name": ref}))
    assert len(found) == 1 and ref in found[0][0]


@pytest.mark.parametrize("ref", [
    "nginx:1.27.3-alpine", "qdrant/qdrant:v1.12.4", "minio/minio:RELEASE.2024-11-07T00-52-20Z",
    f"postgres@{SHA}", f"postgres:16@{SHA}", "registry.local:5000/team/app:2.0.1",
])
def test_pinned_image_passes(ref: str) -> None:
    assert image_pin_problem(ref) is None


def test_built_image_needs_a_tag_that_is_not_floating() -> None:
    build = {"context": ".", "dockerfile": "fleet_backup/Dockerfile"}
    assert run(validate_image_pinned, fake_args(IMAGE, {"name": "openwebui-fleet-backup:5d02e79c", "build": build})) == []
    for ref in ("openwebui-fleet-backup:latest", "openwebui-fleet-backup", "openwebui-fleet-backup:dev"):
        assert len(run(validate_image_pinned, fake_args(IMAGE, {"name": ref, "build": build}))) == 1, ref
    # Only a built image may have a tag without a digit: its tag is the program's content hash.
    assert run(validate_image_pinned, fake_args(IMAGE, {"name": "app:cafebabe"})) != []


# ---- ports -------------------------------------------------------------------------------------

@pytest.mark.parametrize("port", [
    {"internal": 5432.0, "external": 5432.0, "ip": "0.0.0.0"},
    {"internal": 5432.0, "external": 5432.0, "ip": "::"},
    {"internal": 5432.0, "external": 5432.0},
    {"internal": 5432.0, "external": 5432.0, "ip": ""},
])
def test_port_on_every_interface_is_a_violation(port: dict[str, Any]) -> None:
    ok = {"internal": 80.0, "external": 80.0, "ip": "192.168.1.14"}
    found = run(validate_ports_bound_to_node, fake_args(CONTAINER, {"ports": [ok, port]}, name="postgres"))
    assert len(found) == 1
    assert "postgres" in found[0][0] and "5432->5432" in found[0][0]


def test_container_without_ports_passes() -> None:
    assert run(validate_ports_bound_to_node, fake_args(CONTAINER, {"image": "x"})) == []


# ---- secret envs -------------------------------------------------------------------------------

def secret(value: Any) -> dict[str, Any]:
    return {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": value}


@pytest.mark.parametrize("entry", [
    "POSTGRES_PASSWORD=hunter2", "PGPASSWORD=hunter2", "WEBUI_SECRET_KEY=abc", "QDRANT__SERVICE__API_KEY=abc",
    "S3_SECRET_ACCESS_KEY=abc", "MICROSOFT_CLIENT_SECRET=abc", "DATABASE_URL=postgresql://app@db/app",
    "REDIS_URL=redis://:pw@redis:6379/0", "WEBSOCKET_REDIS_URL=redis://:pw@redis:6379/0",
    "OPENAI_API_KEYS=sk-1;sk-2", "REDISCLI_AUTH=pw", "GITHUB_TOKEN=ghp_x",
])
def test_plaintext_secret_env_is_a_violation(entry: str) -> None:
    props = {"envs": ["TZ=UTC", entry, secret("OTHER_PASSWORD=fine")]}
    found = run(validate_no_plaintext_secret_envs, fake_args(CONTAINER, props, name="db"))
    key, _, value = entry.partition("=")
    assert len(found) == 1 and key in found[0][0]
    assert value not in found[0][0]  # the message never repeats the secret


@pytest.mark.parametrize("entry", [
    "REDIS_KEY_PREFIX=open-webui-chat", "S3_KEY_PREFIX=apps/chat", "POSTGRES_PASSWORD_FILE=/run/secrets/pg",
    "WEBUI_URL=https://chat.example.com", "QDRANT_URI=http://10.0.5.24:6333", "POSTGRES_USER=postgres",
    "S3_ENDPOINT_URL=http://user@minio:9000", "WEBUI_AUTH=true",
])
def test_non_secret_env_passes_in_plaintext(entry: str) -> None:
    assert run(validate_no_plaintext_secret_envs, fake_args(CONTAINER, {"envs": [entry]})) == []


def test_secret_list_or_secret_entry_passes() -> None:
    assert run(validate_no_plaintext_secret_envs,
               fake_args(CONTAINER, {"envs": secret(["POSTGRES_PASSWORD=x"])})) == []
    assert run(validate_no_plaintext_secret_envs,
               fake_args(CONTAINER, {"envs": [secret("POSTGRES_PASSWORD=x"), "TZ=UTC"]})) == []


def test_real_container_with_its_secret_marker_removed_fails(prod: Evaluation) -> None:
    """The rule bites on the program's own shape: postgres's envs, made plaintext."""
    postgres = prod.named("shared-postgres", CONTAINER)
    raw = dict(postgres.raw_inputs, envs=postgres.inputs["envs"])
    found = run(validate_no_plaintext_secret_envs, fake_args(CONTAINER, raw, name="postgres"))
    assert [m for m, _ in found if "POSTGRES_PASSWORD" in m]


def test_crossguard_hands_validations_secrets_without_their_marker(prod: Evaluation) -> None:
    """Why the pack cannot enforce the secret rule: pulumi-policy strips the marker before validate."""
    postgres = prod.named("shared-postgres", CONTAINER)
    assert is_secret(postgres.raw_inputs["envs"])
    cli_view = resource_args(prod, postgres, keep_secrets=False)
    envs = list(cli_view.props["envs"])
    assert all(isinstance(e, str) for e in envs) and any(e.startswith("POSTGRES_PASSWORD=") for e in envs)
    # So under the CLI the same rule would flag every correctly-secret password:
    assert run(validate_no_plaintext_secret_envs, cli_view) != []


# ---- backup bucket -------------------------------------------------------------------------------

def aws_provider(endpoint: str | None = None) -> PolicyProviderResource:
    props = {"region": "eu-central-1"}
    if endpoint:
        props["endpoints"] = f'[{{"s3": "{endpoint}"}}]'
    return PolicyProviderResource("pulumi:providers:aws", props, "urn:pulumi:test::p::pulumi:providers:aws::s3", "s3")


def bucket_stack(provider: PolicyProviderResource, with_types: list[str], features: dict[str, bool] | None = None):
    component = fake_resource(BACKUP_BUCKET, "backups", {"features": features} if features is not None else {})
    bucket = fake_resource(BUCKET, "backups-bucket", {"bucket": "fleet-backups"}, provider=provider, parent=component)
    attached = [fake_resource(t, f"backups-{t.rsplit(':', 1)[1]}", {"bucket": "unknown-until-created"},
                              provider=provider, parent=component, depends_on=[bucket]) for t in with_types]
    return stack_args_of([component, bucket, *attached])


def stack_args_of(resources: list) -> StackValidationArgs:
    return StackValidationArgs(resources)


ALL_FEATURES = [LIFECYCLE, VERSIONING, PUBLIC_ACCESS_BLOCK, ENCRYPTION]


def test_bucket_without_lifecycle_is_a_violation() -> None:
    for provider in (aws_provider(), aws_provider("https://fsn1.your-objectstorage.com")):
        found = run(validate_backup_buckets, bucket_stack(provider, [VERSIONING, PUBLIC_ACCESS_BLOCK, ENCRYPTION]))
        assert len(found) == 1 and "BucketLifecycleConfiguration" in found[0][0]
        assert found[0][1].endswith("::backups-bucket")


def test_lifecycle_of_another_bucket_does_not_count() -> None:
    provider = aws_provider("http://minio:9000")
    other = fake_resource(BUCKET, "other", {"bucket": "other"}, provider=provider)
    mine = fake_resource(BUCKET, "mine", {"bucket": "mine"}, provider=provider)
    lifecycle = fake_resource(LIFECYCLE, "other-lifecycle", {"bucket": "other"}, provider=provider)
    found = run(validate_backup_buckets, stack_args_of([other, mine, lifecycle]))
    assert [urn for _, urn in found] == [mine.urn]


def test_aws_bucket_needs_versioning_encryption_and_public_access_block() -> None:
    assert run(validate_backup_buckets, bucket_stack(aws_provider(), ALL_FEATURES)) == []
    found = run(validate_backup_buckets, bucket_stack(aws_provider(), [LIFECYCLE]))
    assert sorted(m.split(" has no ")[1].split(" ")[0] for m, _ in found) == [
        "BucketPublicAccessBlock", "BucketServerSideEncryptionConfiguration", "BucketVersioning"]


def test_s3_compatible_bucket_needs_only_what_its_component_declares() -> None:
    generic = aws_provider("https://fsn1.your-objectstorage.com")
    assert run(validate_backup_buckets, bucket_stack(generic, [LIFECYCLE])) == []
    minio = {"versioning": True, "encryption": False, "publicAccessBlock": False}
    found = run(validate_backup_buckets, bucket_stack(aws_provider("http://minio:9000"), [LIFECYCLE], minio))
    assert len(found) == 1 and "BucketVersioning" in found[0][0]
    assert run(validate_backup_buckets, bucket_stack(aws_provider("http://minio:9000"),
                                                     [LIFECYCLE, VERSIONING], minio)) == []


def test_aws_stack_evaluated_by_the_program_passes() -> None:
    """The program on real AWS configures every feature the policy asks for."""
    config = stack_config("prod")
    backup = {k: v for k, v in config["backup"].items() if k not in ("provider", "endpoint", "region")}
    config["backup"] = {**backup, "region": "eu-central-1"}
    ev = evaluate("prod", config)
    assert ev.error is None, ev.error
    assert {r.type for r in ev.resources} >= set(ALL_FEATURES)
    assert run(validate_backup_buckets, stack_args(ev)) == []


# ---- the pack as the CLI runs it -----------------------------------------------------------------

def test_pack_is_mandatory_python_pack_with_every_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    created: dict[str, Any] = {}
    monkeypatch.setattr("pulumi_policy.PolicyPack", lambda name, policies, **kw: created.update(
        name=name, policies=policies, **kw))  # the real one starts a gRPC server and never returns
    monkeypatch.setattr(sys, "path", list(sys.path))
    runpy.run_path(str(POLICY_DIR), run_name="__main__")  # as pulumi/policy/__main__.py runs the pack
    assert created["name"] == "openwebui-fleet"
    assert created["enforcement_level"] == EnforcementLevel.MANDATORY
    names = [p.name for p in created["policies"]]
    assert names == [p.name for p in POLICIES] and len(set(names)) == len(names) == 4
    project = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert "pulumi-policy" in (POLICY_DIR / "requirements.txt").read_text()


def _analyze_request(ev: Evaluation, urn: str) -> Any:
    """The AnalyzeRequest the engine sends for one resource (secrets kept, as analyzer_plugin.go marshals)."""
    r = ev.by_urn()[urn]
    request = proto.AnalyzeRequest(urn=r.urn, type=r.type, name=r.name,
                                   properties=json_format.ParseDict(r.raw_inputs, struct_pb2.Struct()))
    provider = ev.by_urn().get(r.provider_urn)
    if provider is not None:
        request.provider.CopyFrom(proto.AnalyzerProviderResource(
            type=provider.type, urn=provider.urn, name=provider.name,
            properties=json_format.ParseDict(provider.raw_inputs, struct_pb2.Struct())))
    return request


@pytest.mark.parametrize("stack_name", ["local", "prod"])
def test_pulumi_policy_analyzer_reports_nothing_mandatory_on_the_stack(stack_name: str, request) -> None:
    """pulumi-policy's own gRPC servicer, fed each resource as the engine would: no violations."""
    ev: Evaluation = request.getfixturevalue(stack_name)
    servicer = _PolicyAnalyzerServicer("openwebui-fleet", "0.1.0", POLICIES, EnforcementLevel.MANDATORY)
    not_applicable = set()
    for r in ev.resources:
        response = servicer.Analyze(_analyze_request(ev, r.urn), None)
        assert [d.message for d in response.diagnostics] == [], r.name
        not_applicable |= {n.policy_name for n in response.not_applicable}
    assert not_applicable == {"no-plaintext-secret-envs"}
    stack_response = servicer.AnalyzeStack(proto.AnalyzeStackRequest(resources=[
        proto.AnalyzerResource(urn=r.urn, type=r.type, name=r.name, parent=r.parent,
                               dependencies=r.dependencies,
                               properties=json_format.ParseDict(r.raw_inputs, struct_pb2.Struct()),
                               provider=_analyze_request(ev, r.urn).provider)
        for r in ev.resources]), None)
    assert [d.message for d in stack_response.diagnostics] == []


def test_pulumi_policy_analyzer_reports_a_floating_image_as_mandatory(local: Evaluation) -> None:
    servicer = _PolicyAnalyzerServicer("openwebui-fleet", "0.1.0", POLICIES, EnforcementLevel.MANDATORY)
    request = proto.AnalyzeRequest(urn="urn:pulumi:local::openwebui-fleet::docker:index/remoteImage:RemoteImage::x",
                                   type=IMAGE, name="x",
                                   properties=json_format.ParseDict({"name": "nginx:latest"}, struct_pb2.Struct()))
    [diagnostic] = servicer.Analyze(request, None).diagnostics
    assert diagnostic.policyName == "images-pinned" and diagnostic.enforcementLevel == proto.MANDATORY
    assert any(isinstance(p, StackValidationPolicy) for p in POLICIES)


def test_the_local_minio_bucket_is_held_to_the_versioning_its_component_declares(local: Evaluation) -> None:
    args = stack_args(local)
    assert run(validate_backup_buckets, args) == []
    without_versioning = [r for r in args.resources if r.resource_type != VERSIONING]
    found = run(validate_backup_buckets, stack_args_of(without_versioning))
    assert len(found) == 1 and "BucketVersioning" in found[0][0]
