"""Stack config → a typed, validated fleet model.

The only place that knows defaults and validation rules. Components receive these objects, never
`pulumi.Config` or raw dicts. Every rule's message names the key, the bad value and the fix.
"""
from __future__ import annotations

import ipaddress
import json
import re
import types
import typing
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pulumi
from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

PROJECT = "openwebui-fleet"

# Config keys that hold secrets; each is read with get_secret and never lands in the model.
SECRET_KEYS = ("postgresPassword", "redisPassword", "qdrantApiKey", "objectStorageAccessKey",
               "objectStorageSecretKey", "appSecrets", "sshPrivateKey", "backupAccessKeyId",
               "backupSecretAccessKey", "lbTlsCertificate", "lbTlsKey")
# Secrets that external services cannot do without (in docker mode they are generated).
EXTERNAL_REQUIRED_SECRETS = ("postgresPassword", "redisPassword", "qdrantApiKey",
                             "objectStorageAccessKey", "objectStorageSecretKey")

_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,22}[a-z0-9])?$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")
_FLOATING_TAGS = {"latest", "main", "master", "dev", "nightly", "edge", "stable", "cuda", "ollama"}


class ConfigError(Exception):
    """Stack config that cannot be deployed; the message says what to change."""


class Invalid(ValueError):
    """A rule broken at `key` (dotted, below the model that checks it); `format_error` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"'{value}' is not a valid name: use 1-24 lowercase letters, digits and '-', "
                         "starting with a letter (e.g. 'slave1')")
    return value


def _host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", value):  # looks like an IPv4 address, so a typo, not a name
        raise ValueError(f"'{value}' is not a valid IP address: give the node's IP (e.g. 10.0.5.24)")
    if not _DNS_NAME.fullmatch(value):
        raise ValueError(f"'{value}' is neither an IP address nor a DNS name: "
                         "give the node's IP (e.g. 10.0.5.24) or hostname")
    return value


def _bind_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"'{value}' is not an IP address: give the IP this node publishes "
                         "services on (e.g. 10.0.5.24, or 127.0.0.1 for a local engine)") from None
    if address.is_unspecified:
        raise ValueError(f"'{value}' would publish on every interface: give the node's own address")
    return str(address)


def _pinned_image(value: str) -> str:
    if "@" in value:
        if not re.search(r"@sha256:[0-9a-f]{64}$", value):
            raise ValueError(f"image '{value}' has a malformed digest: give @sha256: and 64 hex digits")
        return value
    repo, _, tag = value.rpartition(":")
    if not repo or "/" in tag or tag in _FLOATING_TAGS or not any(c.isdigit() for c in tag):
        raise ValueError(f"image '{value}' is not pinned: give an explicit version tag "
                         "(e.g. ghcr.io/open-webui/open-webui:v0.12.4) or a digest")
    return value


def _hostname(value: str) -> str:
    if not _DNS_NAME.fullmatch(value) or "." not in value:
        raise ValueError(f"'{value}' is not a public hostname: give a lowercase DNS name such as chat.example.com")
    return value


def _shaped(pattern: str, fix: str) -> AfterValidator:
    """A string matching `pattern`; a mismatch says `fix` rather than showing the regex."""
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"'{value}' {fix}")
        return value
    return AfterValidator(check)


Name = Annotated[str, AfterValidator(_name)]
Host = Annotated[str, AfterValidator(_host)]
BindAddress = Annotated[str, AfterValidator(_bind_address)]
Image = Annotated[str, AfterValidator(_pinned_image)]
Hostname = Annotated[str, AfterValidator(_hostname)]
Url = Annotated[str, _shaped(r"https?://\S+", "is not an http(s) URL: give e.g. http://10.0.5.24:11434")]
AbsolutePath = Annotated[str, _shaped(r"/\S+", "is not an absolute path: give e.g. /etc/ssl/certs/chat.pem")]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
Count = Annotated[int, Strict(), Field(ge=1, le=100)]
MemoryMb = Annotated[int, Strict(), Field(ge=256)]
Cpus = Annotated[float, Field(gt=0, le=64)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel,
                              populate_by_name=True)


# ── nodes ──────────────────────────────────────────────────────────────────────────────────────

class Node(Model):
    """A Docker engine: reached over SSH at `host`, or at `dockerHost` (e.g. the local socket)."""
    host: Host | None = None
    address: BindAddress | None = None
    docker_host: str | None = None
    ssh_user: str | None = None
    ssh_port: Port = 22

    @model_validator(mode="after")
    def _reachable(self) -> Node:
        if self.host is None and self.docker_host is None:
            raise ValueError("give 'host' (reached over SSH) or 'dockerHost' (e.g. unix:///var/run/docker.sock)")
        if self.docker_host is not None and not re.match(r"^(unix|ssh|tcp)://", self.docker_host):
            raise Invalid("dockerHost", f"'{self.docker_host}' must start with unix://, ssh:// or tcp://")
        if self.address is None and not _is_ip(self.host):
            raise Invalid("address", f"required because host '{self.host}' is a name, not an IP: give the IP "
                          "this node publishes services on (e.g. 10.0.5.24)" if self.host else
                          f"required with dockerHost '{self.docker_host}': give the IP this node publishes "
                          "services on (127.0.0.1 for a local engine)")
        return self

    @property
    def engine(self) -> str:
        """Which Docker engine this is, whoever logs in to it (for spotting two nodes on one)."""
        if self.docker_host:
            return re.sub(r"^ssh://[^@/]*@", "ssh://", self.docker_host)
        return f"ssh://{self.host}" + ("" if self.ssh_port == 22 else f":{self.ssh_port}")

    @property
    def bind_address(self) -> str:
        """The IP services on this node are published on, and reached at from other nodes."""
        return self.address or str(ipaddress.ip_address(self.host or ""))

    def docker_url(self, ssh_user: str | None) -> str:
        if self.docker_host:
            return self.docker_host
        port = "" if self.ssh_port == 22 else f":{self.ssh_port}"
        return f"ssh://{self.ssh_user or ssh_user}@{self.host}{port}"


def _is_ip(value: str | None) -> bool:
    try:
        ipaddress.ip_address(value or "")
        return True
    except ValueError:
        return False


# ── shared services ────────────────────────────────────────────────────────────────────────────

class Postgres(Model):
    image: Image = "postgres:16.6-bookworm"
    port: Port = 5432
    admin_user: Name = "postgres"


class Redis(Model):
    image: Image = "redis:7.4.1-bookworm"
    port: Port = 6379
    maxclients: Annotated[int, Strict(), Field(ge=100)] = 10000
    pubsub_buffer_mb: Annotated[int, Strict(), Field(ge=8)] = 256
    # Seconds before Redis closes an idle client; 0 (never) lets dead clients pile up to maxclients.
    timeout: Annotated[int, Strict(), Field(ge=60)] = 1800
    tcp_keepalive: Annotated[int, Strict(), Field(ge=10)] = 60
    maxmemory_mb: Annotated[int, Strict(), Field(ge=64)] | None = None


class Qdrant(Model):
    image: Image = "qdrant/qdrant:v1.12.4"
    port: Port = 6333


class ObjectStorage(Model):
    """MinIO holding Open WebUI's uploaded files (S3 API)."""
    image: Image = "minio/minio:RELEASE.2024-11-07T00-52-20Z"
    client_image: Image = "minio/mc:RELEASE.2024-11-17T19-35-25Z"
    port: Port = 9000
    bucket: str = "openwebui-files"
    region: str = "us-east-1"


class Ollama(Model):
    enabled: bool = False
    image: Image = "ollama/ollama:0.5.4"
    port: Port = 11434


class ExternalPostgres(Model):
    host: Host
    port: Port = 5432
    admin_user: str = "postgres"


class ExternalRedis(Model):
    host: Host
    port: Port = 6379


class ExternalQdrant(Model):
    host: Host
    port: Port = 6333


class ExternalObjectStorage(Model):
    endpoint: Annotated[str, _shaped(r"https?://[^\s/]+/?", "is not a bare endpoint: give scheme and host only, "
                                     "e.g. https://s3.example.com (the bucket goes in bucket)")]
    bucket: str
    region: str = "us-east-1"


class ExternalServices(Model):
    postgres: ExternalPostgres
    redis: ExternalRedis
    qdrant: ExternalQdrant
    object_storage: ExternalObjectStorage


class SharedServices(Model):
    """Where PostgreSQL, Redis, Qdrant and object storage live.

    `node` runs them (mode docker) or, for external services, runs the init steps against them.
    """
    node: Name
    mode: Literal["docker", "external"] = "docker"
    postgres: Postgres = Postgres()
    redis: Redis = Redis()
    qdrant: Qdrant = Qdrant()
    object_storage: ObjectStorage = ObjectStorage()
    ollama: Ollama = Ollama()
    external: ExternalServices | None = None

    @model_validator(mode="after")
    def _mode_matches(self) -> SharedServices:
        if self.mode == "external" and self.external is None:
            raise Invalid("external", "missing, and mode is 'external': add external with postgres, redis, "
                          "qdrant and objectStorage endpoints, or set mode: docker")
        if self.mode == "docker" and self.external is not None:
            raise Invalid("external", "is only read with mode 'external', and mode is 'docker': "
                          "set mode: external or remove external")
        if self.mode == "external" and self.ollama.enabled:
            raise Invalid("ollama.enabled", "true deploys Ollama next to the shared services, which mode "
                          "'external' does not run: remove it and point apps at an Ollama with ollamaUrls")
        return self

    def published_ports(self) -> list[tuple[int, str]]:
        """Host ports this spec publishes on its node, with the key that sets each."""
        if self.mode == "external":
            return []
        ports = [(self.postgres.port, "sharedServices.postgres.port"),
                 (self.redis.port, "sharedServices.redis.port"),
                 (self.qdrant.port, "sharedServices.qdrant.port"),
                 (self.object_storage.port, "sharedServices.objectStorage.port")]
        if self.ollama.enabled:
            ports.append((self.ollama.port, "sharedServices.ollama.port"))
        return ports


# ── apps ───────────────────────────────────────────────────────────────────────────────────────

OPENWEBUI_IMAGE = "ghcr.io/open-webui/open-webui:v0.12.4"


class MicrosoftOAuth(Model):
    client_id: str
    tenant_id: str


class App(Model):
    """One Open WebUI deployment (tenant); its replicas are interchangeable."""
    hostname: Hostname
    replicas: dict[Name, Count]
    image: Image = OPENWEBUI_IMAGE
    # Host port of replica 1 on each node; replica n uses port + n - 1.
    port: Port = 3000
    memory_mb: MemoryMb = 2048
    cpus: Cpus = 1.0
    # The node whose replica 1 runs database migrations; default: first node by name.
    migration_node: Name | None = None
    use_shared_ollama: bool = False
    ollama_urls: list[Url] = []
    openai_api_base_urls: list[Url] = []
    microsoft_oauth: MicrosoftOAuth | None = Field(None, alias="microsoftOAuth")  # to_camel says Oauth
    env: dict[str, str] = {}

    @model_validator(mode="after")
    def _replicas(self) -> App:
        if not self.replicas:
            raise Invalid("replicas", "{} places no replica: give at least one node, e.g. replicas: {master: 1}")
        if self.migration_node is not None and self.migration_node not in self.replicas:
            raise Invalid("migrationNode", f"'{self.migration_node}' has no replica of this app: "
                          f"pick one of {', '.join(sorted(self.replicas))}")
        most = max(self.replicas.values())
        if self.port + most - 1 > 65535:
            raise Invalid("port", f"{self.port} with {most} replicas on one node runs to port "
                          f"{self.port + most - 1}, past 65535: set port to at most {65536 - most}")
        return self

    @property
    def migrating_node(self) -> str:
        return self.migration_node or min(self.replicas)

    def host_port(self, ordinal: int) -> int:
        return self.port + ordinal - 1


class AppSecrets(Model):
    """Per-app secrets, given in the secret config object `appSecrets`."""
    microsoft_client_secret: str | None = None
    openai_api_keys: list[str] = []


# ── load balancer ──────────────────────────────────────────────────────────────────────────────

class Tls(Model):
    """Certificate and key as paths on the load balancer's host, or (both paths absent, docker
    mode) from the secrets lbTlsCertificate and lbTlsKey."""
    certificate_path: AbsolutePath | None = None
    key_path: AbsolutePath | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> Tls:
        if (self.certificate_path is None) != (self.key_path is None):
            raise Invalid("", "give both certificatePath and keyPath, or neither (then the certificate "
                          "and key come from the secrets lbTlsCertificate and lbTlsKey)")
        return self

    @property
    def from_secrets(self) -> bool:
        return self.certificate_path is None


class LoadBalancer(Model):
    node: Name
    mode: Literal["docker", "native"] = "docker"
    image: Image = "nginx:1.27.3-alpine"
    http_port: Port = 80
    https_port: Port = 443
    tls: Tls | None = None
    client_max_body_size_mb: Annotated[int, Strict(), Field(ge=1, le=10240)] = 100
    proxy_read_timeout_s: Annotated[int, Strict(), Field(ge=30)] = 3600
    max_fails: Annotated[int, Strict(), Field(ge=1)] = 3
    fail_timeout_s: Annotated[int, Strict(), Field(ge=1)] = 10
    keepalive: Annotated[int, Strict(), Field(ge=1)] = 32
    health_path: Annotated[str, _shaped(r"/[A-Za-z0-9/_-]*",
                                        "is not a plain URL path: give e.g. /lb-health")] = "/lb-health"
    # native mode: the file the host's nginx loads, replaced whole; sudo when not logging in as root.
    native_conf_path: AbsolutePath = "/etc/nginx/nginx.conf"
    native_sudo: bool = True

    def published_ports(self) -> list[tuple[int, str]]:
        ports = [(self.http_port, "loadBalancer.httpPort")]
        if self.tls is not None:
            ports.append((self.https_port, "loadBalancer.httpsPort"))
        return ports


# ── backups ────────────────────────────────────────────────────────────────────────────────────

ProviderName = Literal["aws", "minio", "generic"]
StorageClass = Literal["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR",
                       "DEEP_ARCHIVE"]


@dataclass(frozen=True)
class ProviderFeatures:
    """Bucket APIs an S3 endpoint implements; absent features are not configured at all."""
    versioning: bool
    encryption: bool  # default server-side encryption (SSE-S3)
    public_access_block: bool
    transitions: bool  # lifecycle transitions to other storage classes


# MinIO: versioning yes; SSE-S3 needs a KMS (KES) and transitions need remote tiers, so both off.
# generic: assume only the core object + lifecycle-expiration API (e.g. Hetzner, Ceph RGW).
PROVIDER_FEATURES: dict[str, ProviderFeatures] = {
    "aws": ProviderFeatures(versioning=True, encryption=True, public_access_block=True, transitions=True),
    "minio": ProviderFeatures(versioning=True, encryption=False, public_access_block=False, transitions=False),
    "generic": ProviderFeatures(versioning=False, encryption=False, public_access_block=False,
                                transitions=False),
}

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MIN_30_DAYS = {"STANDARD_IA", "ONEZONE_IA"}  # S3 rejects transitions to these before day 30
_RULE_ID = re.compile(r"^[A-Za-z0-9._-]{1,255}$")


class Transition(Model):
    days: int
    storage_class: StorageClass


class RetentionRule(Model):
    """Expire objects under `prefix` after `days`; one S3 lifecycle rule."""
    prefix: str
    days: int
    noncurrent_days: int | None = None
    abort_multipart_days: int = 1
    transitions: tuple[Transition, ...] = ()
    id: str | None = None  # default derived from the prefix, see rule_id

    @property
    def rule_id(self) -> str:
        return self.id or "expire-" + (self.prefix.strip("/").replace("/", "-") or "all")


def _default_retention() -> tuple[RetentionRule, ...]:
    return (RetentionRule(prefix="backups/", days=30, noncurrent_days=7),)


class Backup(Model):
    """Where backups go, when they run and how long they are kept."""
    bucket: str
    provider: ProviderName = "aws"
    endpoint: str | None = None
    # The endpoint as the backup job on the shared node reaches it, when that differs (e.g. the
    # fleet's own MinIO: 127.0.0.1:9000 for Pulumi, the container name for the job).
    job_endpoint: str | None = None
    region: str = "us-east-1"
    schedule: str = "0 2 * * *"
    retention: tuple[RetentionRule, ...] = _default_retention()

    @property
    def features(self) -> ProviderFeatures:
        return PROVIDER_FEATURES[self.provider]

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, v: str) -> str:
        fix = "use 3-63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit"
        if not _BUCKET_NAME.match(v) or ".." in v or ".-" in v or "-." in v:
            raise Invalid("", f"{v!r} is not a valid S3 bucket name; {fix}")
        if v.startswith(("xn--", "sthree-")) or v.endswith(("-s3alias", "--ol-s3")):
            raise Invalid("", f"{v!r} uses a prefix/suffix S3 reserves; choose another name")
        try:
            ipaddress.IPv4Address(v)
        except ValueError:
            return v
        raise Invalid("", f"{v!r} looks like an IP address, which S3 rejects; choose a name")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        if len(v.split()) != 5 or not croniter.is_valid(v):
            raise Invalid("", f"{v!r} is not a 5-field cron expression (UTC); e.g. \"0 2 * * *\"")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Backup:
        if self.provider == "aws" and self.endpoint is not None:
            raise Invalid("endpoint", f"{self.endpoint!r} is set but provider is 'aws'; remove endpoint, "
                                       "or set provider: minio or generic for an S3-compatible store")
        if self.provider != "aws":
            if self.endpoint is None:
                raise Invalid("endpoint", f"missing for provider {self.provider!r}; set endpoint: "
                                           "https://<host> of the S3-compatible store")
            if not re.match(r"^https?://[^/\s]+/?$", self.endpoint):
                raise Invalid("endpoint", f"{self.endpoint!r} is not a URL; use https://<host>[:port]")
        if not self.retention:
            raise Invalid("retention", "is empty; add at least one rule, e.g. {prefix: backups/, days: 30}")
        seen_ids: dict[str, int] = {}
        for i, rule in enumerate(self.retention):
            self._check_rule(f"retention[{i}]", rule)
            if rule.rule_id in seen_ids:
                raise Invalid(f"retention[{i}].id", f"{rule.rule_id!r} is also the id of "
                                                     f"retention[{seen_ids[rule.rule_id]}]; give each rule a unique id")
            seen_ids[rule.rule_id] = i
        for i, a in enumerate(self.retention):
            for j, b in enumerate(self.retention):
                if i != j and b.prefix.startswith(a.prefix):
                    raise Invalid(f"retention[{j}].prefix",
                                   f"{b.prefix!r} lies under retention[{i}].prefix {a.prefix!r}, so both rules "
                                   "would apply; use prefixes that do not contain each other")
        return self

    def _check_rule(self, key: str, rule: RetentionRule) -> None:
        if not rule.prefix or not rule.prefix.endswith("/") or rule.prefix.startswith("/"):
            raise Invalid(f"{key}.prefix", f"{rule.prefix!r} must be a folder like 'backups/prod/' "
                                            "(no leading '/', ending in '/')")
        if rule.id is not None and not _RULE_ID.match(rule.id):
            raise Invalid(f"{key}.id", f"{rule.id!r} must be 1-255 letters, digits, '.', '_' or '-'")
        for field, value in (("days", rule.days), ("abortMultipartDays", rule.abort_multipart_days),
                             ("noncurrentDays", rule.noncurrent_days)):
            if value is not None and value <= 0:
                raise Invalid(f"{key}.{field}", f"{value} must be greater than 0; set a number of days >= 1")
        if rule.noncurrent_days is not None and not self.features.versioning:
            raise Invalid(f"{key}.noncurrentDays",
                           f"{rule.noncurrent_days} is set but provider {self.provider!r} has no versioning; "
                           "remove noncurrentDays")
        if rule.transitions and not self.features.transitions:
            raise Invalid(f"{key}.transitions", f"provider {self.provider!r} does not support storage-class "
                                                 "transitions; remove transitions")
        for t_index, t in enumerate(rule.transitions):
            t_key = f"{key}.transitions[{t_index}].days"
            if t.days <= 0:
                raise Invalid(t_key, f"{t.days} must be greater than 0; set a number of days >= 1")
            if t.storage_class in _MIN_30_DAYS and t.days < 30:
                raise Invalid(t_key, f"{t.days} is too early for {t.storage_class} (S3 requires >= 30 days); "
                                      "use days >= 30 or storageClass GLACIER_IR/GLACIER")
            if t.days >= rule.days:
                raise Invalid(t_key, f"{t.days} is not before the expiration ({key}.days = {rule.days}); "
                                      f"use fewer than {rule.days} days or drop the transition")


# ── the fleet ──────────────────────────────────────────────────────────────────────────────────

class Fleet(Model):
    nodes: dict[Name, Node]
    shared_services: SharedServices
    apps: dict[Name, App]
    load_balancer: LoadBalancer | None = None
    backup: Backup | None = None
    ssh_user: str | None = None
    ssh_opts: list[str] = []

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Fleet:
        secrets: set[str] = (info.context or {}).get("secrets", set())
        app_secrets: dict[str, Any] = (info.context or {}).get("app_secrets", {})
        self._check_nodes()
        self._check_placement()
        self._check_apps(app_secrets)
        self._check_ports()
        if self.backup is not None and not {"backupAccessKeyId", "backupSecretAccessKey"} <= secrets:
            if self.backup.provider != "minio" or self.shared_services.mode == "external":
                raise Invalid("backup", "needs the store's credentials: pulumi config set --secret "
                              "backupAccessKeyId ... and backupSecretAccessKey ... (only provider 'minio' "
                              "on the fleet's own MinIO can use the fleet's credentials)")
        self._check_tls(secrets)
        if self.shared_services.mode == "external":
            missing = [k for k in EXTERNAL_REQUIRED_SECRETS if k not in secrets]
            if missing:
                raise Invalid("sharedServices.mode", f"'external' needs the services' credentials as secrets, "
                              f"missing {', '.join(missing)}: pulumi config set --secret <key> ... for each")
        return self

    def _check_tls(self, secrets: set[str]) -> None:
        lb = self.load_balancer
        tls_secrets = {"lbTlsCertificate", "lbTlsKey"} & secrets
        if lb is None or lb.tls is None:
            if tls_secrets:
                raise Invalid(sorted(tls_secrets)[0], "is set but loadBalancer.tls is not: add "
                              "loadBalancer.tls: {} to serve HTTPS with it, or remove the secret")
            return
        if lb.tls.from_secrets:
            if lb.mode == "native":
                raise Invalid("loadBalancer.tls", "{} (certificate from secrets) works in mode docker only: "
                              "in mode native give certificatePath and keyPath on the host")
            if len(tls_secrets) < 2:
                raise Invalid("loadBalancer.tls", "{} takes the certificate and key from secrets: "
                              "pulumi config set --secret lbTlsCertificate < fullchain.pem and "
                              "pulumi config set --secret lbTlsKey < privkey.pem")
        elif tls_secrets:
            raise Invalid("loadBalancer.tls", "gives certificatePath and keyPath and the secrets "
                          f"{', '.join(sorted(tls_secrets))} are set too: keep one of the two")

    def _check_nodes(self) -> None:
        if not self.nodes:
            raise Invalid("nodes", "{} has no node: add at least one, e.g. nodes: {master: {host: 10.0.0.2}}")
        seen: dict[str, str] = {}
        for name, node in self.nodes.items():
            if node.docker_host is None and not (node.ssh_user or self.ssh_user):
                raise Invalid(f"nodes.{name}", f"host '{node.host}' is reached over SSH but no user is set: "
                              f"set sshUser (for every node) or nodes.{name}.sshUser")
            if node.engine in seen:
                raise Invalid(f"nodes.{name}", f"{node.engine} is the same Docker engine as nodes.{seen[node.engine]}: "
                              "remove one, or give each node its own host")
            seen[node.engine] = name

    def _check_placement(self) -> None:
        known = ", ".join(sorted(self.nodes))
        placed = [("sharedServices.node", self.shared_services.node)]
        if self.load_balancer is not None:
            placed.append(("loadBalancer.node", self.load_balancer.node))
        placed += [(f"apps.{app}.replicas", node) for app, spec in self.apps.items() for node in spec.replicas]
        for key, node in placed:
            if node not in self.nodes:
                raise Invalid(key, f"node '{node}' is not under nodes (known: {known})")
        lb = self.load_balancer
        if lb is not None and lb.mode == "native" and self.nodes[lb.node].host is None:
            raise Invalid("loadBalancer.mode", f"'native' writes nginx's config over SSH, but node "
                          f"'{lb.node}' has no host: give nodes.{lb.node}.host or use mode: docker")

    def _check_apps(self, app_secrets: dict[str, Any]) -> None:
        if not self.apps:
            raise Invalid("apps", "{} has no app: add at least one with a hostname and replicas")
        hostnames: dict[str, str] = {}
        for name, app in self.apps.items():
            if app.hostname in hostnames:
                raise Invalid(f"apps.{name}.hostname", f"'{app.hostname}' is already apps.{hostnames[app.hostname]}'s: "
                              "give each app its own hostname")
            hostnames[app.hostname] = name
            if app.use_shared_ollama and not self.shared_services.ollama.enabled:
                raise Invalid(f"apps.{name}.useSharedOllama", "true needs sharedServices.ollama.enabled: true: "
                              "enable it, or point the app at an Ollama with ollamaUrls")
            managed = sorted(set(app.env) & MANAGED_ENV)
            if managed:
                raise Invalid(f"apps.{name}.env", f"sets {', '.join(managed)}, which the program manages: "
                              "remove it from env (see the README's config reference)")
            unknown = sorted(set(app.env) - OPENWEBUI_ENV_NAMES)
            if unknown:
                raise Invalid(f"apps.{name}.env", f"'{unknown[0]}' is not a variable Open WebUI reads: "
                              "check its spelling against Open WebUI's environment documentation")
            if app.microsoft_oauth and not AppSecrets.model_validate(app_secrets.get(name, {})).microsoft_client_secret:
                raise Invalid(f"apps.{name}.microsoftOAuth", f"clientId '{app.microsoft_oauth.client_id}' needs its "
                              "client secret: pulumi config set --secret --path "
                              f"'appSecrets.{name}.microsoftClientSecret' ...")
        unknown = sorted(set(app_secrets) - set(self.apps))
        if unknown:
            raise Invalid(f"appSecrets.{unknown[0]}", f"no app named '{unknown[0]}' "
                          f"(apps: {', '.join(sorted(self.apps))}): rename or remove it")
        # Replica names are '<app>-<node>-<n>'; two different pairs must not spell the same name.
        spelled: dict[str, tuple[str, str]] = {}
        for app, spec in self.apps.items():
            for node in spec.replicas:
                other = spelled.setdefault(f"{app}-{node}", (app, node))
                if other != (app, node):
                    raise Invalid(f"apps.{app}.replicas.{node}", f"apps.{app} on node '{node}' and apps.{other[0]} "
                                  f"on node '{other[1]}' give replicas the same name '{app}-{node}-N': "
                                  "rename an app or a node")

    def _check_ports(self) -> None:
        used: dict[str, dict[int, str]] = defaultdict(dict)  # node → host port → what holds it

        def claim(key: str, value: int, wants: dict[str, list[tuple[int, str]]]) -> None:
            """Give `key` (set to `value`) the ports it wants on each node, or say what to set it to."""
            for node, ports in wants.items():
                for port, _ in ports:
                    if port in used[node]:
                        width = max(len(p) for p in wants.values())
                        free = next((start for start in range(value + 1, 65537 - width)
                                     if all(start + i not in used[n] for n in wants for i in range(width))), None)
                        fix = f"set {key} to a free port, e.g. {free}" if free is not None else f"lower {key}"
                        raise Invalid(key, f"{value} collides on node {node}: port {port} is already "
                                      f"used by {used[node][port]}: {fix}")
            for node, ports in wants.items():
                used[node].update(ports)

        if self.shared_services.mode == "docker":
            for port, key in self.shared_services.published_ports():
                claim(key, port, {self.shared_services.node: [(port, key)]})
        if self.load_balancer is not None:
            for port, key in self.load_balancer.published_ports():
                claim(key, port, {self.load_balancer.node: [(port, key)]})
        for name, app in self.apps.items():
            claim(f"apps.{name}.port", app.port, {
                node: [(app.host_port(n), f"apps.{name}.port (replica {n})") for n in range(1, count + 1)]
                for node, count in app.replicas.items()})


# Every variable Open WebUI's backend reads (components/openwebui_env_names.txt).
OPENWEBUI_ENV_NAMES = frozenset(
    line for line in (Path(__file__).with_name("openwebui_env_names.txt")).read_text().splitlines()
    if line and not line.startswith("#"))

# Open WebUI variables the program sets itself; `apps.<app>.env` may not override them.
MANAGED_ENV = frozenset({
    "WEBUI_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "REDIS_KEY_PREFIX", "ENABLE_WEBSOCKET_SUPPORT",
    "WEBSOCKET_MANAGER", "WEBSOCKET_REDIS_URL", "VECTOR_DB", "QDRANT_URI", "QDRANT_API_KEY",
    "QDRANT_COLLECTION_PREFIX", "STORAGE_PROVIDER", "S3_ENDPOINT_URL", "S3_BUCKET_NAME",
    "S3_KEY_PREFIX", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_REGION_NAME",
    "S3_ADDRESSING_STYLE", "WEBUI_URL", "CORS_ALLOW_ORIGIN", "UVICORN_WORKERS",
    "ENABLE_DB_MIGRATIONS", "OLLAMA_BASE_URLS", "ENABLE_OLLAMA_API", "OPENAI_API_BASE_URLS",
    "OPENAI_API_KEYS", "ENABLE_OPENAI_API", "MICROSOFT_CLIENT_ID", "MICROSOFT_CLIENT_SECRET",
    "MICROSOFT_CLIENT_TENANT_ID",
})


# ── the program's edge: raw stack config in, one readable message out ───────────────────────────

def parse_fleet(raw: dict[str, Any], secret_keys: set[str], app_secrets: dict[str, Any]) -> Fleet:
    """Validate raw stack config (keys without the project prefix); raise ConfigError on a mistake.

    `secret_keys` names the secret keys that are set; `app_secrets` is the plaintext `appSecrets`
    object, used only to check its shape and never stored.
    """
    unknown = sorted(set(raw) - set(_known_keys(Fleet)) - set(SECRET_KEYS))
    if unknown:
        raise ConfigError(f"{PROJECT}:{unknown[0]}: unknown key: known keys are "
                          f"{', '.join(_known_keys(Fleet) + list(SECRET_KEYS))}")
    try:
        for app, value in app_secrets.items():
            AppSecrets.model_validate(value)
    except ValidationError as e:
        raise ConfigError(format_error(e, f"appSecrets.{app}", AppSecrets)) from None
    fleet_raw = {k: v for k, v in raw.items() if k not in SECRET_KEYS}
    try:
        return Fleet.model_validate(fleet_raw, context={"secrets": secret_keys, "app_secrets": app_secrets})
    except ValidationError as e:
        raise ConfigError(format_error(e, "", Fleet)) from None


def _known_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the field at `loc` (for naming the known keys)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return current
            current = field.annotation
        current = _unwrap(current, part)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any, part: Any) -> Any:
    """Step into Optional[...] / dict[K, V] / list[V] / Annotated[...] towards a BaseModel."""
    while True:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is Annotated:
            annotation = args[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next((a for a in args if a is not type(None)), annotation)
        elif origin is dict and isinstance(part, str) and part != "[key]":
            return args[1]
        elif origin is list and isinstance(part, int):
            return args[0]
        else:
            return annotation


def format_error(error: ValidationError, root: str, model: type[BaseModel]) -> str:
    """One readable message: the key, the bad value and the fix (one problem only)."""
    errors = error.errors(include_url=False)
    # A misspelt required key is both missing and unknown; the unknown one shows the typo.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in first["loc"] if p != "[key]")
    parts = [root] if root else []
    parts += [str(p) if not isinstance(p, int) else f"[{p}]" for p in loc]
    path = ".".join(parts).replace(".[", "[")
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, Invalid):
        return f"{'.'.join(p for p in (path, cause.key) if p)}: {cause}"
    path = path or "config"
    # pydantic names our classes ("a valid dictionary or instance of Node"); users wrote YAML.
    message = re.sub(r" or instance of \w+", "", first["msg"].removeprefix("Value error, "))
    if first["type"] == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        known = f": known keys here are {', '.join(_known_keys(parent))}" if parent else ""
        return f"{path}: unknown key '{loc[-1]}'{known}"
    if first["type"] == "missing":
        return f"{path}: required key is missing: add it (see the README's config reference)"
    shown = first.get("input")
    if first["type"] == "int_type" and isinstance(shown, str) and shown.strip().isdigit():
        return f"{path}: {shown!r} is a string: write the number without quotes, e.g. {shown.strip()}"
    if first["type"] == "string_type" and isinstance(shown, (int, float, bool)):
        return f"{path}: {shown!r} is not a string: quote it, e.g. '{json.dumps(shown)}'"
    if first["type"].startswith(("int_", "greater_than", "less_than", "float_")):
        return f"{path}: {shown!r} is not allowed: {message[0].lower()}{message[1:]}"
    if first["type"] in ("value_error", "assertion_error"):
        return f"{path}: {message}"
    return f"{path}: {shown!r} is not valid: {message[0].lower()}{message[1:]}"


# ── reading it from Pulumi ─────────────────────────────────────────────────────────────────────

def parse_backup(raw: dict[str, Any]) -> Backup:
    """Validate just the `backup` key (for tools that need nothing else); raise ConfigError."""
    try:
        return Backup.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_error(e, "backup", Backup)) from None


class StackConfigError(ConfigError, pulumi.RunError):
    """Raised at the program's edge; Pulumi prints a RunError's message without a traceback."""


@dataclass(frozen=True)
class AppSecretOutputs:
    microsoft_client_secret: pulumi.Output[str] | None
    openai_api_keys: pulumi.Output[str] | None  # ';'-joined, as OPENAI_API_KEYS wants


@dataclass(frozen=True)
class Secrets:
    """Secret config values, each an `Output.secret`; absent keys are generated by the components."""
    given: dict[str, pulumi.Output[str]]
    apps: dict[str, AppSecretOutputs]

    def get(self, key: str) -> pulumi.Output[str] | None:
        return self.given.get(key)

    def lb_tls(self) -> tuple[pulumi.Output[str], pulumi.Output[str]] | None:
        """The load balancer's certificate and key, when they come from secrets."""
        cert, key = self.get("lbTlsCertificate"), self.get("lbTlsKey")
        return None if cert is None or key is None else (cert, key)


def load_stack_config() -> tuple[Fleet, Secrets]:
    """Read this stack's config, validate it and separate the secrets. Raises StackConfigError."""
    prefix = f"{PROJECT}:"
    raw = {k.removeprefix(prefix): _decode(k, v) for k, v in _all_config().items() if k.startswith(prefix)}
    app_secrets_raw = raw.get("appSecrets", {})
    if not isinstance(app_secrets_raw, dict):
        raise StackConfigError("appSecrets: must be an object of app name → {microsoftClientSecret, openaiApiKeys}")
    try:
        fleet = parse_fleet(raw, {k for k in SECRET_KEYS if k in raw}, app_secrets_raw)
    except ConfigError as e:
        raise StackConfigError(str(e)) from None
    for name, app in fleet.apps.items():
        if app.migration_node is None and len(app.replicas) > 1:
            pulumi.log.warn(f"apps.{name}: database migrations run on node '{app.migrating_node}' (first by "
                            f"name); a node added later that sorts before it would take them over: set "
                            f"apps.{name}.migrationNode: {app.migrating_node} to pin them")
    config = pulumi.Config()
    given = {k: pulumi.Output.secret(config.require_secret(k)) for k in SECRET_KEYS
             if k in raw and k != "appSecrets"}
    apps = {}
    for app in fleet.apps:
        parsed = AppSecrets.model_validate(app_secrets_raw.get(app, {}))
        apps[app] = AppSecretOutputs(
            microsoft_client_secret=_secret(parsed.microsoft_client_secret),
            openai_api_keys=_secret(";".join(parsed.openai_api_keys) or None))
    return fleet, Secrets(given, apps)


def _secret(value: str | None) -> pulumi.Output[str] | None:
    return None if value is None else pulumi.Output.secret(value)


def _all_config() -> dict[str, Any]:
    # The SDK has no public "list every key"; unknown keys must be reported, so read the map.
    from pulumi.runtime import config as runtime_config
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def _decode(key: str, value: Any) -> Any:
    """Objects and lists arrive as JSON text; plain strings stay strings."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise StackConfigError(f"{key}: {value[:40]!r} starts like an object or list but is not valid "
                                   "JSON: fix it, or quote the whole value as a string") from None
    return value
