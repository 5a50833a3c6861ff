"""Per-app Open WebUI settings beyond placement: scaling, logging, sign-in providers and where
settings come from (`settingsFrom`). Each field is one Open WebUI variable or a few; the names are
in components/render/openwebui_settings.py, checked against Open WebUI 0.12.4's source."""

from typing import Annotated, Literal, Self

from pydantic import Field, Strict, model_validator

from components.config.types import Invalid, Model, Url

PoolCount = Annotated[int, Strict(), Field(ge=0, le=500)]
Seconds = Annotated[int, Strict(), Field(ge=1, le=86400)]
Claim = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:/-]+$")]


class DatabasePool(Model):
    """SQLAlchemy's pool per engine. Open WebUI opens two engines per replica (sync and async,
    open_webui/internal/db.py), each with this pool: the budget counts both."""
    size: Annotated[int, Strict(), Field(ge=1, le=500)] = 10
    max_overflow: PoolCount = 10
    timeout_s: Seconds = 30
    recycle_s: Seconds = 3600

    @property
    def connections_per_replica(self) -> int:
        return 2 * (self.size + self.max_overflow)


class GoogleOAuth(Model):
    client_id: str
    scope: str = "openid email profile"


class GitHubOAuth(Model):
    client_id: str
    scope: str = "user:email"


class MicrosoftOAuthProvider(Model):
    client_id: str
    tenant_id: str
    scope: str = "openid email profile"


class OidcOAuth(Model):
    """Any OpenID Connect provider (Keycloak, Authentik, Okta, …), by its discovery URL."""
    client_id: str
    provider_url: Url  # …/.well-known/openid-configuration
    provider_name: str = "SSO"
    scopes: str = "openid email profile"
    # S256 (PKCE) lets a public client sign in without a client secret.
    code_challenge: Literal["S256"] | None = None

    @model_validator(mode="after")
    def _discovery(self) -> Self:
        if not self.provider_url.rstrip("/").endswith("/.well-known/openid-configuration"):
            raise Invalid("providerUrl", f"'{self.provider_url}' is not a discovery URL: give the provider's "
                          "…/.well-known/openid-configuration, e.g. "
                          "https://sso.example.com/realms/acme/.well-known/openid-configuration")
        return self


class Claims(Model):
    email: Claim = "email"
    username: Claim = "name"
    picture: Claim = "picture"
    sub: Claim | None = None
    groups: Claim = "groups"
    roles: Claim = "roles"


class RoleManagement(Model):
    """Roles from the `roles` claim on every login: admins from adminRoles, users from allowedRoles;
    anyone else is refused."""
    allowed_roles: list[Claim] = ["user", "admin"]
    admin_roles: list[Claim] = ["admin"]


class GroupManagement(Model):
    """Group membership from the `groups` claim on every login."""
    create_groups: bool = False


class OAuth(Model):
    google: GoogleOAuth | None = None
    github: GitHubOAuth | None = None
    microsoft: MicrosoftOAuthProvider | None = None
    oidc: OidcOAuth | None = None
    signup: bool = False
    merge_accounts_by_email: bool = False
    allowed_domains: list[str] = ["*"]
    claims: Claims = Claims()
    role_management: RoleManagement | None = None
    group_management: GroupManagement | None = None
    login_form: bool = True

    @model_validator(mode="after")
    def _some_provider(self) -> Self:
        if not (self.google or self.github or self.microsoft or self.oidc):
            raise Invalid("", "names no provider: add google, github, microsoft or oidc (or remove oauth)")
        return self

    def providers(self) -> list[str]:
        return [p for p in ("google", "github", "microsoft", "oidc") if getattr(self, p) is not None]


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class AppSettings(Model):
    """The settings of `apps.<app>` this module owns (mixed into the app model)."""
    database_pool: DatabasePool = DatabasePool()
    # Open WebUI's thread pool for blocking work: its default of 40 stalls a busy replica.
    thread_pool_size: Annotated[int, Strict(), Field(ge=40, le=100000)] = 2000
    # Seconds between a user's last-active writes; must stay under the 180 s active-user window.
    user_active_status_update_interval_s: Annotated[int, Strict(), Field(ge=1, le=179)] = 120
    # Redis connections one replica may open (Open WebUI does not cap its pools): the budget's estimate.
    redis_connections_per_replica: Annotated[int, Strict(), Field(ge=1, le=10000)] = 50
    log_format: Literal["json", "text"] = "json"
    log_level: LogLevel = "INFO"
    settings_from: Literal["stack", "adminUi"] = "stack"
    oauth: OAuth | None = None
