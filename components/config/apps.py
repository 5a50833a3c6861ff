"""`apps` and `appSecrets`: one Open WebUI deployment (tenant) each."""

from typing import Self

from pydantic import Field, model_validator

from components.config.app_settings import AppSettings
from components.config.types import Count, Cpus, Hostname, Image, Invalid, MemoryMb, Model, Name, Port, Url
from components.render.nginx import MAX_UPSTREAM_SERVERS

OPENWEBUI_IMAGE = "ghcr.io/open-webui/open-webui:v0.12.4"


class MicrosoftOAuth(Model):
    client_id: str
    tenant_id: str


class AppSpec(AppSettings):
    """One Open WebUI deployment (tenant); its replicas are interchangeable. Scaling, logging,
    sign-in and `settingsFrom` come from AppSettings."""
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
    def _replicas(self) -> Self:
        if not self.replicas:
            raise Invalid("replicas", "{} places no replica: give at least one node, e.g. replicas: {master: 1}")
        if self.migration_node is not None and self.migration_node not in self.replicas:
            raise Invalid("migrationNode", f"'{self.migration_node}' has no replica of this app: "
                          f"pick one of {', '.join(sorted(self.replicas))}")
        if self.microsoft_oauth is not None and self.oauth is not None and self.oauth.microsoft is not None:
            raise Invalid("microsoftOAuth", "and oauth.microsoft both configure Microsoft sign-in: keep oauth.microsoft "
                          "and remove microsoftOAuth")
        total = sum(self.replicas.values())
        if total > MAX_UPSTREAM_SERVERS:
            raise Invalid("replicas", f"{total} in all, more than the {MAX_UPSTREAM_SERVERS} an app's upstream in "
                          "the load balancer holds: spread them over two apps")
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
    google_client_secret: str | None = None
    github_client_secret: str | None = None
    oidc_client_secret: str | None = None
    openai_api_keys: list[str] = []
    # Open WebUI variables holding credentials (e.g. TAVILY_API_KEY), secret end to end.
    env: dict[str, str] = {}

