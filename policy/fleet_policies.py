"""The fleet's policies: plain validate functions (the tests call them) and the Policy objects the pack runs.

A resource validation takes `(args, report_violation)` where `args` has `resource_type`, `name`, `urn`
and `props` (a Mapping, as pulumi-policy's ResourceValidationArgs); the stack validation takes
`args.resources`, each a PolicyResource (`resource_type`, `urn`, `props`, `provider`, `parent`,
`dependencies`, `property_dependencies`).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from pulumi_policy.proxy import UnknownValueError

try:  # imported as policy.fleet_policies (the program, the tests) or, in the pack, from policy/ itself
    from policy.image_refs import floating_tag, split_image_ref
except ModuleNotFoundError:
    from image_refs import floating_tag, split_image_ref  # type: ignore[no-redef]

IMAGE = "docker:index/remoteImage:RemoteImage"
CONTAINER = "docker:index/container:Container"
BUCKET = "aws:s3/bucket:Bucket"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BACKUP_BUCKET = "openwebui-fleet:index:BackupBucket"

# ---------------------------------------------------------------------------------------------
# Images: a tag that names one release, or a digest (which tags float: image_refs.py).

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def image_pin_problem(ref: str, built: bool = False) -> str | None:
    """Why `ref` is not pinned, or None. A built image's tag is the program's content hash."""
    _, tag, digest = split_image_ref(ref)
    if digest is not None:
        if _DIGEST.fullmatch("@" + digest):
            return None
        return f"image {ref!r} has a malformed digest: use @sha256: and the 64 hex digits"
    if not tag:
        return f"image {ref!r} has no tag, so Docker pulls :latest: pin a release tag such as :1.2.3 or a @sha256: digest"
    if floating_tag(tag):
        return f"image {ref!r} uses the floating tag {tag!r}: pin a release tag such as :1.2.3 or a @sha256: digest"
    if not built and not re.search(r"\d", tag):
        return f"image {ref!r}: tag {tag!r} names no version (no digit): pin a release tag or a @sha256: digest"
    return None


def validate_image_pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != IMAGE:
        return
    problem = image_pin_problem(str(args.props.get("name") or ""), built=bool(args.props.get("build")))
    if problem:
        report_violation(problem, None)


# ---------------------------------------------------------------------------------------------
# Ports: published on the node's own address, never on every interface.

WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", "[::]", "::0"})


def _port_label(port: Mapping[str, Any]) -> str:
    def num(key: str) -> str:
        value = port.get(key)
        return str(int(value)) if isinstance(value, (int, float)) else str(value)
    return f"{num('external')}->{num('internal')}"


def validate_ports_bound_to_node(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != CONTAINER:
        return
    for port in args.props.get("ports") or []:
        ip = port.get("ip")
        if not ip:
            report_violation(f"container {args.name}: port {_port_label(port)} has no ip, so Docker publishes it "
                             "on 0.0.0.0: set ip to the node's address", None)
        elif str(ip).strip() in WILDCARD_ADDRESSES:
            report_violation(f"container {args.name}: port {_port_label(port)} is published on {ip}: set ip "
                             "to the node's address", None)


# ---------------------------------------------------------------------------------------------
# Container environments: anything that looks like a credential is a Pulumi secret.

SECRET_KEY_NAMES = frozenset({"WEBUI_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "REDISCLI_AUTH", "PGPASSWORD"})
SECRET_KEY_TOKENS = frozenset({"PASSWORD", "PASSWORDS", "PASSWD", "SECRET", "SECRETS", "TOKEN", "TOKENS", "KEY",
                               "KEYS", "APIKEY", "CREDENTIALS"})
NOT_SECRET_KEY_NAMES = frozenset({"REDIS_KEY_PREFIX", "S3_KEY_PREFIX"})
# A path to a secret (Docker's *_FILE convention) or a name prefix is not the secret itself.
NOT_SECRET_SUFFIXES = ("_PREFIX", "_FILE", "_PATH")
_URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]+@", re.IGNORECASE)


def env_key_is_secret(key: str, value: str) -> bool:
    """Whether the env entry KEY=value carries a credential by its name or by a password in a URL."""
    upper = key.upper()
    if upper in NOT_SECRET_KEY_NAMES or upper.endswith(NOT_SECRET_SUFFIXES):
        return False
    if upper in SECRET_KEY_NAMES or upper.endswith("PASSWORD"):
        return True
    if SECRET_KEY_TOKENS & {t for t in upper.split("_") if t}:
        return True
    return bool(_URL_WITH_PASSWORD.match(value))


def is_secret(value: Any) -> bool:
    """A secret as pulumi-policy marks it (Secret) or as the engine sends it over gRPC."""
    if isinstance(value, Secret):
        return True
    return isinstance(value, Mapping) and value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG


def validate_no_plaintext_secret_envs(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Needs props in which secrets are still marked (see CROSSGUARD_STRIPS_SECRETS)."""
    if args.resource_type != CONTAINER:
        return
    envs = args.props.get("envs")
    if envs is None or is_secret(envs):  # one secret element makes the engine mark the whole list
        return
    for entry in envs:
        if is_secret(entry):
            continue
        key, _, value = str(entry).partition("=")
        if env_key_is_secret(key, value):
            report_violation(f"container {args.name}: env {key} is in plaintext: pass it as a Pulumi secret "
                             "(pulumi.Output.secret or `pulumi config set --secret`)", None)


CROSSGUARD_STRIPS_SECRETS = (
    "pulumi-policy's Analyze hands validations the inputs with secret markers removed "
    "(deserialize_properties(..., proxy_secrets=False)), so a plaintext value cannot be told from a secret "
    "here; the test suite checks this rule on the program's registered inputs instead (tests/test_policy.py)")


def crossguard_no_plaintext_secret_envs(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """What the pack runs under the CLI: the rule cannot see secretness there, so it says so."""
    if args.resource_type == CONTAINER:
        args.not_applicable(CROSSGUARD_STRIPS_SECRETS)


# ---------------------------------------------------------------------------------------------
# Backup bucket: lifecycle always; versioning, encryption and public-access block on real AWS.

BUCKET_FEATURES = {  # feature as the BackupBucket component would declare it → the resource it needs
    "versioning": VERSIONING,
    "encryption": ENCRYPTION,
    "publicAccessBlock": PUBLIC_ACCESS_BLOCK,
}


def _get(props: Mapping[str, Any], key: str) -> Any:
    """A prop, or None where it is missing or not known until the update (preview of a new resource)."""
    try:
        return props.get(key)
    except UnknownValueError:
        return None


def custom_s3_endpoint(provider: Any) -> str | None:
    """The S3 endpoint an aws provider is pointed at, or None for real AWS (or the default provider)."""
    if provider is None:
        return None
    endpoints = _get(provider.props, "endpoints")
    if isinstance(endpoints, str):  # provider inputs travel as JSON strings
        try:
            endpoints = json.loads(endpoints)
        except ValueError:
            return None
    for endpoint in endpoints or []:
        url = _get(endpoint, "s3") if isinstance(endpoint, Mapping) else None
        if url:
            return str(url)
    return None


def _references(resource: PolicyResource, bucket: PolicyResource) -> bool:
    """Whether `resource` configures `bucket`: by its `bucket` input's dependency, else by value."""
    by_property = resource.property_dependencies.get("bucket")
    if by_property:
        return any(d.urn == bucket.urn for d in by_property)
    if any(d.urn == bucket.urn for d in resource.dependencies):
        return True
    name = _get(resource.props, "bucket")
    return name is not None and name in (_get(bucket.props, "bucket"), _get(bucket.props, "id"))


def declared_features(bucket: PolicyResource) -> dict[str, bool] | None:
    """Features the BackupBucket component says it configured (its `features` prop), if it says."""
    parent = bucket.parent
    if parent is None or parent.resource_type != BACKUP_BUCKET:
        return None
    features = _get(parent.props, "features")
    return {k: bool(features.get(k)) for k in BUCKET_FEATURES} if isinstance(features, Mapping) else None


def validate_backup_buckets(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources: list[PolicyResource] = list(args.resources)
    for bucket in (r for r in resources if r.resource_type == BUCKET):
        def attached(type_: str, bucket: PolicyResource = bucket) -> bool:
            return any(r.resource_type == type_ and _references(r, bucket) for r in resources)

        label = _get(bucket.props, "bucket") or bucket.name
        if not attached(LIFECYCLE):
            report_violation(f"bucket {label} has no BucketLifecycleConfiguration: backups would be kept "
                             "forever; add retention rules", bucket.urn)
        endpoint = custom_s3_endpoint(bucket.provider)
        declared = declared_features(bucket)
        if endpoint is None:
            required: Iterable[str] = BUCKET_FEATURES  # real AWS implements every one of them
        elif declared is not None:
            required = [f for f, on in declared.items() if on]
        else:
            required = []  # an S3-compatible store: what it implements is the stack config's business
        for feature in required:
            if not attached(BUCKET_FEATURES[feature]):
                where = "on AWS" if endpoint is None else f"declared by its BackupBucket for {endpoint}"
                report_violation(f"bucket {label} has no {BUCKET_FEATURES[feature].rsplit(':', 1)[1]} "
                                 f"({feature} is required {where})", bucket.urn)


# ---------------------------------------------------------------------------------------------

POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    ResourceValidationPolicy(
        name="images-pinned",
        description="Docker images name a release tag or a sha256 digest; built images a non-floating tag.",
        validate=validate_image_pinned,
    ),
    ResourceValidationPolicy(
        name="ports-bound-to-node-address",
        description="Every published container port has an explicit ip that is not 0.0.0.0 or ::.",
        validate=validate_ports_bound_to_node,
    ),
    ResourceValidationPolicy(
        name="no-plaintext-secret-envs",
        description="Container env entries that carry credentials are Pulumi secrets.",
        validate=crossguard_no_plaintext_secret_envs,
    ),
    StackValidationPolicy(
        name="backup-bucket-configured",
        description="Every S3 bucket has lifecycle rules; on AWS also versioning, encryption and a "
                    "public-access block.",
        validate=validate_backup_buckets,
    ),
]
MANDATORY = EnforcementLevel.MANDATORY
