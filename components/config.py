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
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError,
                      ValidationInfo, model_validator)
import pulumi
from pydantic.alias_generators import to_camel

PROJECT = "openwebui-fleet"

# Config keys that hold secrets; each is read with get_secret and never lands in the model.
SECRET_KEYS = ("postgresPassword", "redisPassword", "qdrantApiKey", "objectStorageAccessKey",
               "objectStorageSecretKey", "appSecrets", "sshPrivateKey")
# Secrets that external services cannot do without (in docker mode they are generated).
EXTERNAL_REQUIRED_SECRETS = ("postgresPassword", "redisPassword", "qdrantApiKey",
                             "objectStorageAccessKey", "objectStorageSecretKey")

_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,22}[a-z0-9])?$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")
_FLOATING_TAGS = {"latest", "main", "master", "dev", "nightly", "edge", "stable", "cuda", "ollama"}


class ConfigError(Exception):
    """Stack config that cannot be deployed; the message says what to change."""


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
    if "@sha256:" in value:
        return value
    repo, _, tag = value.rpartition(":")
    if not repo or "/" in tag or tag in _FLOATING_TAGS or not any(c.isdigit() for c in tag):
        raise ValueError(f"image '{value}' is not pinned: give an explicit version tag "
                         "(e.g. ghcr.io/open-webui/open-webui:v0.12.4) or a digest")
    return value


def _hostname(value: str) -> str:
    if not _DNS_NAME.fullmatch(value) or "." not in value:
        raise ValueError(f"'{value}' is not a public hostname: give a DNS name such as chat.example.com")
    return value


Name = Annotated[str, AfterValidator(_name)]
Host = Annotated[str, AfterValidator(_host)]
BindAddress = Annotated[str, AfterValidator(_bind_address)]
Image = Annotated[str, AfterValidator(_pinned_image)]
Hostname = Annotated[str, AfterValidator(_hostname)]
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
        if self.address is None and not _is_ip(self.host):
            raise ValueError("give 'address': the IP this node publishes services on "
                             f"('{self.host}' is a name, not an IP)" if self.host else
                             "give 'address': the IP this node publishes services on (127.0.0.1 for a local engine)")
        if self.docker_host is not None and not re.match(r"^(unix|ssh|tcp)://", self.docker_host):
            raise ValueError(f"dockerHost '{self.docker_host}' must start with unix://, ssh:// or tcp://")
        return self

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
    endpoint: Annotated[str, Field(pattern=r"^https?://[^\s/]+/?$")]
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
            raise ValueError("mode 'external' needs 'external' with postgres, redis, qdrant and "
                             "objectStorage endpoints")
        if self.mode == "docker" and self.external is not None:
            raise ValueError("'external' is only read with mode: external; set mode: external or remove it")
        if self.mode == "external" and self.ollama.enabled:
            raise ValueError("ollama.enabled deploys Ollama next to the shared services, which mode "
                             "'external' does not run; point apps at it with ollamaUrls instead")
        return self

    def published_ports(self) -> dict[int, str]:
        """Host ports this spec publishes on its node, by the key that sets them."""
        if self.mode == "external":
            return {}
        ports = {self.postgres.port: "sharedServices.postgres.port",
                 self.redis.port: "sharedServices.redis.port",
                 self.qdrant.port: "sharedServices.qdrant.port",
                 self.object_storage.port: "sharedServices.objectStorage.port"}
        if self.ollama.enabled:
            ports[self.ollama.port] = "sharedServices.ollama.port"
        if len(ports) < 4 + self.ollama.enabled:
            raise ValueError("two shared services use the same port: give each its own 'port'")
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
    ollama_urls: list[Annotated[str, Field(pattern=r"^https?://\S+$")]] = []
    openai_api_base_urls: list[Annotated[str, Field(pattern=r"^https?://\S+$")]] = []
    microsoft_oauth: MicrosoftOAuth | None = Field(None, alias="microsoftOAuth")
    env: dict[str, str] = {}

    @model_validator(mode="after")
    def _replicas(self) -> App:
        if not self.replicas:
            raise ValueError("replicas is empty: place at least one replica, e.g. replicas: {master: 1}")
        if self.migration_node is not None and self.migration_node not in self.replicas:
            raise ValueError(f"migrationNode '{self.migration_node}' has no replica of this app: "
                             f"pick one of {', '.join(sorted(self.replicas))}")
        last = self.port + max(self.replicas.values()) - 1
        if last > 65535:
            raise ValueError(f"port {self.port} + replicas runs past 65535: lower 'port'")
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
    """Certificate and key as paths on the load balancer's host."""
    certificate_path: Annotated[str, Field(pattern=r"^/\S+$")]
    key_path: Annotated[str, Field(pattern=r"^/\S+$")]


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
    health_path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9/_-]*$")] = "/lb-health"
    # native mode: the file the host's nginx loads, replaced whole; sudo when not logging in as root.
    native_conf_path: Annotated[str, Field(pattern=r"^/\S+$")] = "/etc/nginx/nginx.conf"
    native_sudo: bool = True

    def published_ports(self) -> dict[int, str]:
        ports = {self.http_port: "loadBalancer.httpPort"}
        if self.tls is not None:
            ports[self.https_port] = "loadBalancer.httpsPort"
        return ports


# ── the fleet ──────────────────────────────────────────────────────────────────────────────────

class Fleet(Model):
    nodes: dict[Name, Node]
    shared_services: SharedServices
    apps: dict[Name, App]
    load_balancer: LoadBalancer | None = None
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
        if self.shared_services.mode == "external":
            missing = [k for k in EXTERNAL_REQUIRED_SECRETS if k not in secrets]
            if missing:
                raise ValueError(
                    "sharedServices.mode 'external' needs the services' credentials as secrets: "
                    + ", ".join(f"pulumi config set --secret {k} ..." for k in missing))
        return self

    def _check_nodes(self) -> None:
        if not self.nodes:
            raise ValueError("nodes is empty: add at least one node, e.g. nodes: {master: {host: 10.0.0.2}}")
        seen: dict[str, str] = {}
        for name, node in self.nodes.items():
            if node.docker_host is None and not (node.ssh_user or self.ssh_user):
                raise ValueError(f"nodes.{name} is reached over SSH but no user is set: "
                                 "set sshUser (or nodes.{name}.sshUser)")
            where = node.docker_url(self.ssh_user)
            if where in seen and not where.startswith("unix://"):
                raise ValueError(f"nodes.{name} and nodes.{seen[where]} are the same engine ({where}): "
                                 "remove one, or give each node its own host")
            seen[where] = name

    def _check_placement(self) -> None:
        known = ", ".join(sorted(self.nodes))
        placed = [("sharedServices.node", self.shared_services.node)]
        if self.load_balancer is not None:
            placed.append(("loadBalancer.node", self.load_balancer.node))
        placed += [(f"apps.{app}.replicas", node) for app, spec in self.apps.items() for node in spec.replicas]
        for key, node in placed:
            if node not in self.nodes:
                raise ValueError(f"{key}: node '{node}' is not under nodes (known: {known})")
        lb = self.load_balancer
        if lb is not None and lb.mode == "native" and self.nodes[lb.node].host is None:
            raise ValueError(f"loadBalancer.mode 'native' writes nginx's config over SSH, but node "
                             f"'{lb.node}' has no host: give nodes.{lb.node}.host or use mode: docker")

    def _check_apps(self, app_secrets: dict[str, Any]) -> None:
        if not self.apps:
            raise ValueError("apps is empty: add at least one app with a hostname and replicas")
        hostnames: dict[str, str] = {}
        for name, app in self.apps.items():
            if app.hostname in hostnames:
                raise ValueError(f"apps.{name}.hostname '{app.hostname}' is already apps.{hostnames[app.hostname]}'s: "
                                 "give each app its own hostname")
            hostnames[app.hostname] = name
            if app.use_shared_ollama and not self.shared_services.ollama.enabled:
                raise ValueError(f"apps.{name}.useSharedOllama needs sharedServices.ollama.enabled: true")
            managed = sorted(set(app.env) & MANAGED_ENV)
            if managed:
                raise ValueError(f"apps.{name}.env sets {', '.join(managed)}, which the program manages: "
                                 "remove it from env (see the README's config reference)")
            if app.microsoft_oauth and not AppSecrets.model_validate(app_secrets.get(name, {})).microsoft_client_secret:
                raise ValueError(f"apps.{name}.microsoftOAuth needs its client secret: "
                                 f"pulumi config set --secret --path 'appSecrets.{name}.microsoftClientSecret' ...")
        unknown = sorted(set(app_secrets) - set(self.apps))
        if unknown:
            raise ValueError(f"appSecrets.{unknown[0]}: no app of that name (apps: {', '.join(sorted(self.apps))})")
        # Replica names are '<app>-<node>-<n>'; two different pairs must not spell the same name.
        spelled: dict[str, tuple[str, str]] = {}
        for app, spec in self.apps.items():
            for node in spec.replicas:
                other = spelled.setdefault(f"{app}-{node}", (app, node))
                if other != (app, node):
                    raise ValueError(f"apps.{app} on node {node} and apps.{other[0]} on node {other[1]} "
                                     f"give replicas the same name '{app}-{node}-N': rename an app or a node")

    def _check_ports(self) -> None:
        used: dict[str, dict[int, str]] = defaultdict(dict)

        def claim(node: str, port: int, owner: str) -> None:
            if port in used[node]:
                taken = set(used[node])
                free = next(p for p in range(port + 1, 65536) if p not in taken)
                raise ValueError(f"port {port} on node {node} is used by {used[node][port]} and {owner}: "
                                 f"move one of them, e.g. to {free}")
            used[node][port] = owner

        if self.shared_services.mode == "docker":
            for port, key in self.shared_services.published_ports().items():
                claim(self.shared_services.node, port, key)
        if self.load_balancer is not None:
            for port, key in self.load_balancer.published_ports().items():
                claim(self.load_balancer.node, port, key)
        for name, app in self.apps.items():
            for node, count in app.replicas.items():
                for ordinal in range(1, count + 1):
                    claim(node, app.host_port(ordinal), f"apps.{name} (replica {ordinal}, apps.{name}.port)")


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
    """One readable message: the key, the bad value and the fix (the first problem only)."""
    first = error.errors(include_url=False)[0]
    loc = tuple(p for p in first["loc"] if p != "[key]")
    parts = [root] if root else []
    parts += [str(p) if not isinstance(p, int) else f"[{p}]" for p in loc]
    path = ".".join(parts).replace(".[", "[") or "config"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        known = f": known keys here are {', '.join(_known_keys(parent))}" if parent else ""
        return f"{path}: unknown key '{loc[-1]}'{known}"
    if first["type"] == "missing":
        return f"{path}: required key is missing: add it (see the README's config reference)"
    shown = first.get("input")
    if first["type"].startswith(("int_", "greater_than", "less_than", "float_")):
        return f"{path}: {shown!r} is not allowed: {message[0].lower()}{message[1:]}"
    if first["type"] in ("value_error", "assertion_error"):
        return f"{path}: {message}"
    return f"{path}: {shown!r} is not valid: {message[0].lower()}{message[1:]}"


# ── reading it from Pulumi ─────────────────────────────────────────────────────────────────────

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


def load_stack_config() -> tuple[Fleet, Secrets]:
    """Read this stack's config, validate it and separate the secrets. Raises StackConfigError."""
    prefix = f"{PROJECT}:"
    raw = {k.removeprefix(prefix): _decode(v) for k, v in _all_config().items() if k.startswith(prefix)}
    app_secrets_raw = raw.get("appSecrets", {})
    if not isinstance(app_secrets_raw, dict):
        raise StackConfigError("appSecrets: must be an object of app name → {microsoftClientSecret, openaiApiKeys}")
    try:
        fleet = parse_fleet(raw, {k for k in SECRET_KEYS if k in raw}, app_secrets_raw)
    except ConfigError as e:
        raise StackConfigError(str(e)) from None
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


def _decode(value: Any) -> Any:
    """Objects and lists arrive as JSON text; plain strings stay strings."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise StackConfigError(f"config value {value[:40]!r}... is not valid JSON/YAML") from None
    return value
