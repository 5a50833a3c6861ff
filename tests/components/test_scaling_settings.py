"""What the stack's scaling, sign-in and env settings become on the containers (mock engine)."""
from __future__ import annotations

import copy

from fleet_queries import env, plaintext_leaks, replicas_of, secret_needles
from plan.engine import CONTAINER, Evaluation, evaluate, is_secret, stack_config


def test_every_replica_gets_the_scaling_settings_and_the_stack_wins(prod: Evaluation) -> None:
    for app in ("chat", "research"):
        for replica in replicas_of(prod, app):
            e = env(replica)
            assert {k: e[k] for k in ("DATABASE_POOL_SIZE", "DATABASE_POOL_MAX_OVERFLOW", "THREAD_POOL_SIZE",
                                      "DATABASE_USER_ACTIVE_STATUS_UPDATE_INTERVAL", "LOG_FORMAT",
                                      "GLOBAL_LOG_LEVEL", "ENABLE_PERSISTENT_CONFIG",
                                      "ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS")} == {
                "DATABASE_POOL_SIZE": "10", "DATABASE_POOL_MAX_OVERFLOW": "10", "THREAD_POOL_SIZE": "2000",
                "DATABASE_USER_ACTIVE_STATUS_UPDATE_INTERVAL": "120", "LOG_FORMAT": "json",
                "GLOBAL_LOG_LEVEL": "INFO", "ENABLE_PERSISTENT_CONFIG": "false",
                "ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS": "false"}


def test_common_env_reaches_every_app_and_an_apps_env_wins() -> None:
    config = copy.deepcopy(stack_config("prod"))
    config["commonEnv"] = {"JWT_EXPIRES_IN": "7d", "ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS": "true"}
    config["apps"]["research"]["env"] = {"JWT_EXPIRES_IN": "1d"}
    ev = evaluate("prod", config)
    assert ev.error is None
    assert {env(r)["JWT_EXPIRES_IN"] for r in replicas_of(ev, "chat")} == {"7d"}
    assert {env(r)["JWT_EXPIRES_IN"] for r in replicas_of(ev, "research")} == {"1d"}
    # The hardening default gives way to the operator's choice.
    assert {env(r)["ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS"] for r in replicas_of(ev, "chat")} == {"true"}


def test_sign_up_is_closed_on_every_replica_unless_the_operator_opens_it() -> None:
    """Open WebUI closes sign-up after the first admin by saving `ui.enable_signup` false; with settingsFrom
    stack (ENABLE_PERSISTENT_CONFIG=false) that lands in one replica's memory only, and every other replica,
    and that one after a restart, let anyone sign up (seen on the real fleet: tests/realfleet)."""
    config = copy.deepcopy(stack_config("prod"))
    ev = evaluate("prod", config)
    assert {env(r).get("ENABLE_SIGNUP") for app in ("chat", "research") for r in replicas_of(ev, app)} == {"false"}
    config["apps"]["research"]["env"] = {"ENABLE_SIGNUP": "true"}
    ev = evaluate("prod", config)
    assert ev.error is None
    assert {env(r)["ENABLE_SIGNUP"] for r in replicas_of(ev, "research")} == {"true"}
    assert {env(r)["ENABLE_SIGNUP"] for r in replicas_of(ev, "chat")} == {"false"}


def test_oauth_client_secrets_and_secret_env_stay_secret_end_to_end() -> None:
    config = copy.deepcopy(stack_config("prod"))
    config["apps"]["chat"]["oauth"] = {
        "oidc": {"clientId": "fleet",
                 "providerUrl": "https://sso.example.com/realms/acme/.well-known/openid-configuration"},
        "google": {"clientId": "g-id"}, "signup": True}
    config["appSecrets"] = {"chat": {"oidcClientSecret": {"secure": "AAABAKoidc"},
                                     "googleClientSecret": {"secure": "AAABAKgoogle"},
                                     "env": {"TAVILY_API_KEY": {"secure": "AAABAKtavily"}}}}
    ev = evaluate("prod", config)
    assert ev.error is None
    for replica in replicas_of(ev, "chat"):
        e = env(replica)
        assert e["OAUTH_CLIENT_SECRET"] == "mock-secret:appSecrets.chat.oidcClientSecret"
        assert e["GOOGLE_CLIENT_SECRET"] == "mock-secret:appSecrets.chat.googleClientSecret"
        assert e["TAVILY_API_KEY"] == "mock-secret:appSecrets.chat.env.TAVILY_API_KEY"
        assert e["OPENID_REDIRECT_URI"] == "https://chat.example.com/oauth/oidc/login/callback"
        assert e["ENABLE_OAUTH_SIGNUP"] == "true"
        assert is_secret(replica.raw_inputs["envs"])
    assert all("TAVILY_API_KEY" not in env(r) for r in replicas_of(ev, "research"))
    for resource in ev.resources:
        assert plaintext_leaks(resource.raw_inputs, secret_needles(ev)) == [], resource.name
    assert plaintext_leaks(ev.outputs, secret_needles(ev)) == []


def test_postgres_runs_with_the_settings_and_sizes_from_the_nodes_memory() -> None:
    config = copy.deepcopy(stack_config("prod"))
    config["nodes"]["shared"]["memoryMb"] = 16384
    config["sharedServices"]["postgres"] = {"settings": {"work_mem": "16MB"}}
    ev = evaluate("prod", config)
    assert ev.error is None
    assert ev.named("shared-postgres", CONTAINER).inputs["command"] == [
        "postgres", "-c", "effective_cache_size=6144MB", "-c", "maintenance_work_mem=512MB",
        "-c", "max_connections=500", "-c", "shared_buffers=2048MB", "-c", "work_mem=16MB"]


def test_redis_runs_with_an_idle_timeout(prod: Evaluation) -> None:
    command = " ".join(prod.named("shared-redis", CONTAINER).inputs["command"])
    assert "--timeout 1800 --tcp-keepalive 60" in command and "--maxmemory " not in command
