"""Scaling settings, sign-in, env sources and budgets in stack config: each mistake one message.
Each test takes the prod stack's config (chat: master 1 + slave1 2 replicas, 4096 MB, 2 CPUs;
research: master 1, 2048 MB, 1 CPU; a backup job) and makes one edit to it."""
from __future__ import annotations

from test_config import parses, prod, rejection

OIDC = {"clientId": "fleet", "providerUrl": "https://sso.example.com/realms/acme/.well-known/openid-configuration"}


# ── budgets ─────────────────────────────────────────────────────────────────────────────────────

def test_prod_fits_every_budget_at_the_defaults() -> None:
    config = prod()
    config["nodes"]["master"]["memoryMb"] = 6144   # chat 4096 + research 2048
    config["nodes"]["master"]["cpus"] = 3          # chat 2 + research 1
    config["nodes"]["slave1"]["memoryMb"] = 8192   # chat 2 × 4096
    parses(config)


def test_postgres_connections_beyond_max_connections_are_refused() -> None:
    config = prod()
    config["apps"]["chat"]["databasePool"] = {"size": 40, "maxOverflow": 40}
    # chat 3 × 2 × 80 = 480, research 1 × 2 × 20 = 40, backup job 2: 522 > 500 - 3
    assert rejection(config) == (
        "sharedServices.postgres.settings.max_connections: 500 leaves 497 connections (3 reserved), but the "
        "apps and jobs may open 522 (chat 3 × 2 × (40 + 40) + research 1 × 2 × (10 + 10) + backup job 2; "
        "each replica has two pools of databasePool.size + maxOverflow): raise max_connections to at least 525, "
        "or lower apps.<app>.databasePool")


def test_reserved_slots_and_a_given_max_connections_count() -> None:
    config = prod()
    config["sharedServices"]["postgres"] = {"settings": {"max_connections": "170",
                                                         "superuser_reserved_connections": "10"}}
    # 3 × 40 + 40 + 2 = 162 > 170 - 10
    assert rejection(config).startswith(
        "sharedServices.postgres.settings.max_connections: 170 leaves 160 connections (10 reserved), but the "
        "apps and jobs may open 162 (")
    config["sharedServices"]["postgres"]["settings"]["superuser_reserved_connections"] = "8"
    parses(config)  # 162 = 170 - 8


def test_redis_connections_beyond_maxclients_are_refused() -> None:
    config = prod()
    config["sharedServices"]["redis"] = {"maxclients": 150}
    assert rejection(config) == (
        "sharedServices.redis.maxclients: 150 is less than the 200 connections the replicas may open "
        "(chat 3 × 50 + research 1 × 50, replicas × redisConnectionsPerReplica): raise maxclients to at "
        "least 200, or lower apps.<app>.redisConnectionsPerReplica")
    config["apps"]["research"]["redisConnectionsPerReplica"] = 1
    config["apps"]["chat"]["redisConnectionsPerReplica"] = 40   # 3 × 40 + 1 = 121
    parses(config)


def test_replicas_memory_beyond_the_nodes_memory_is_refused() -> None:
    config = prod()
    config["nodes"]["slave1"]["memoryMb"] = 6000
    assert rejection(config) == (
        "nodes.slave1.memoryMb: 6000 is less than the 8192 MB of memory limits of the replicas placed on it "
        "(chat 2 × 4096 MB): raise it, lower apps.<app>.memoryMb, or place fewer replicas on this node")


def test_replicas_cpus_beyond_the_nodes_cpus_are_refused() -> None:
    config = prod()
    config["nodes"]["master"]["cpus"] = 2.5
    assert rejection(config) == (
        "nodes.master.cpus: 2.5 is less than the 3 CPUs of the replicas placed on it (chat 1 × 2 + research "
        "1 × 1): raise it, lower apps.<app>.cpus, or place fewer replicas on this node")


# ── PostgreSQL settings, Redis settings ─────────────────────────────────────────────────────────

def test_a_postgres_setting_outside_the_allow_list_is_refused() -> None:
    config = prod()
    config["sharedServices"]["postgres"] = {"settings": {"fsync": "off"}}
    assert rejection(config).startswith(
        "sharedServices.postgres.settings.fsync: 'fsync' is not a setting the fleet passes to PostgreSQL: "
        "use one of autovacuum_max_workers, ")


def test_a_postgres_size_without_unit_is_refused() -> None:
    config = prod()
    config["sharedServices"]["postgres"] = {"settings": {"shared_buffers": "1024"}}
    assert rejection(config) == ("sharedServices.postgres.settings.shared_buffers: '1024' is not a valid value "
                                 "for shared_buffers: give e.g. 1GB")


def test_redis_idle_timeout_zero_is_refused() -> None:
    config = prod()
    config["sharedServices"]["redis"] = {"timeout": 0}
    assert rejection(config) == ("sharedServices.redis.timeout: 0 is out of range: write a number from 60, "
                                 "e.g. timeout: 1800")


# ── sign-in ─────────────────────────────────────────────────────────────────────────────────────

def test_an_oauth_provider_without_its_client_secret_is_refused() -> None:
    config = prod()
    config["apps"]["chat"]["oauth"] = {"oidc": OIDC}
    assert rejection(config) == (
        "apps.chat.oauth.oidc: needs its client secret: pulumi config set --secret --path "
        "'appSecrets.chat.oidcClientSecret' ... (or codeChallenge: S256 for a public client)")
    parses(config, app_secrets={"chat": {"oidcClientSecret": "s"}})
    config["apps"]["chat"]["oauth"] = {"oidc": {**OIDC, "codeChallenge": "S256"}}
    parses(config)  # a public client with PKCE


def test_google_needs_its_secret_too() -> None:
    config = prod()
    config["apps"]["research"]["oauth"] = {"google": {"clientId": "g"}}
    assert rejection(config) == ("apps.research.oauth.google: needs its client secret: pulumi config set "
                                 "--secret --path 'appSecrets.research.googleClientSecret' ...")


def test_a_provider_url_that_is_not_a_discovery_document_is_refused() -> None:
    config = prod()
    config["apps"]["chat"]["oauth"] = {"oidc": {**OIDC, "providerUrl": "https://sso.example.com/realms/acme"}}
    assert rejection(config) == (
        "apps.chat.oauth.oidc.providerUrl: 'https://sso.example.com/realms/acme' is not a discovery URL: give "
        "the provider's …/.well-known/openid-configuration, e.g. "
        "https://sso.example.com/realms/acme/.well-known/openid-configuration")


def test_microsoft_in_both_forms_is_refused() -> None:
    config = prod()
    config["apps"]["chat"]["microsoftOAuth"] = {"clientId": "a", "tenantId": "t"}
    config["apps"]["chat"]["oauth"] = {"microsoft": {"clientId": "a", "tenantId": "t"}}
    assert rejection(config, app_secrets={"chat": {"microsoftClientSecret": "s"}}) == (
        "apps.chat.microsoftOAuth: and oauth.microsoft both configure Microsoft sign-in: keep oauth.microsoft "
        "and remove microsoftOAuth")


# ── env sources ─────────────────────────────────────────────────────────────────────────────────

def test_common_env_follows_the_rules_of_app_env() -> None:
    config = prod()
    config["commonEnv"] = {"THREAD_POOL_SIZE": "10"}
    assert rejection(config) == ("commonEnv: sets THREAD_POOL_SIZE, which the program manages: remove it "
                                 "from env (see the README's config reference)")
    config["commonEnv"] = {"ENABLE_SIGNUPS": "false"}
    assert rejection(config) == ("commonEnv: 'ENABLE_SIGNUPS' is not a variable Open WebUI reads: check its "
                                 "spelling against Open WebUI's environment documentation")


def test_secret_env_names_are_checked_and_may_not_repeat_plain_env() -> None:
    config = prod()
    assert rejection(config, app_secrets={"chat": {"env": {"TAVILY_APIKEY": "x"}}}) == (
        "appSecrets.chat.env: 'TAVILY_APIKEY' is not a variable Open WebUI reads: check its spelling against "
        "Open WebUI's environment documentation")
    config["commonEnv"] = {"TAVILY_API_KEY": "plain"}
    assert rejection(config, app_secrets={"chat": {"env": {"TAVILY_API_KEY": "x"}}}) == (
        "appSecrets.chat.env: TAVILY_API_KEY is also set in plain env or commonEnv: keep it only in appSecrets")


def test_settings_mode_is_stack_or_admin_ui() -> None:
    config = prod()
    config["apps"]["chat"]["settingsFrom"] = "database"
    assert rejection(config) == "apps.chat.settingsFrom: 'database' is not allowed: write 'stack' or 'adminUi'"


