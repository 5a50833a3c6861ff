"""The program's edge: raw stack config in (from Pulumi, or a dict), a validated fleet or one message out."""
from __future__ import annotations

import difflib
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pydantic import TypeAdapter, ValidationError

from components.config.apps import AppSecrets
from components.config.backup import BackupSpec
from components.config.errors import Problem, format_errors, known_keys, shown
from components.config.fleet import FleetSpec
from components.config.types import ConfigError

PROJECT = "openwebui-fleet"

# Config keys that hold secrets; each is read with get_secret and never lands in the model.
SECRET_KEYS = ("postgresPassword", "redisPassword", "qdrantApiKey", "objectStorageAccessKey",
               "objectStorageSecretKey", "appSecrets", "sshPrivateKey", "backupAccessKeyId",
               "backupSecretAccessKey", "lbTlsCertificate", "lbTlsKey", "backupSigningKey", "backupWebhookUrl",
               "backupEncryptionKey", "backupCopyAccessKeyId", "backupCopySecretAccessKey",
               "analyticsAccessKeyId", "analyticsSecretAccessKey")


def parse_fleet(raw: dict[str, Any], secret_keys: set[str], app_secrets: dict[str, Any]) -> FleetSpec:
    """Validate raw stack config (keys without the project prefix); raise ConfigError on a mistake.

    Every mistake is found in one run: pydantic collects the field errors of each top-level key, and
    the rules that span keys (`FleetSpec.problems`) run on the keys (and nodes, apps) that validated. One
    line a mistake, sorted by key. `secret_keys` names the secret keys that are set; `app_secrets` is
    the plaintext `appSecrets` object, used only to check its shape and never stored.
    """
    known = known_keys(FleetSpec) + list(SECRET_KEYS)
    problems: list[Problem] = []
    for key in sorted(set(raw) - set(known)):
        close = difflib.get_close_matches(key, known, n=1)
        fix = f"write '{close[0]}'" if close else "remove it"
        problems.append((key, f"{PROJECT}:{key}: unknown key: {fix} (known keys are {', '.join(known)})"))
    for app, value in app_secrets.items():
        if not isinstance(value, dict):
            problems.append((f"appSecrets.{app}", f"appSecrets.{app}: the value (not shown, it is a secret) is not "
                             "an object: give {microsoftClientSecret: ..., openaiApiKeys: [...]}"))
            continue
        try:
            AppSecrets.model_validate(value)
        except ValidationError as e:
            problems += format_errors(e, f"appSecrets.{app}", AppSecrets, secret=True)
    fleet_raw = {k: v for k, v in raw.items() if k in known and k not in SECRET_KEYS}
    context = {"secrets": secret_keys, "app_secrets": app_secrets}
    if not problems:
        try:  # a valid config is validated once: its cross-key rules run in FleetSpec's own validator
            return FleetSpec.model_validate(fleet_raw, context=context)
        except ValidationError:
            pass  # every mistake is found below, key by key
    values: dict[str, Any] = {}
    partly: set[str] = set()
    # Each top-level key on its own, so a mistake in one leaves the others to check. (FleetSpec has no
    # field validators of its own; its cross-key rules run below.)
    for name, field in FleetSpec.model_fields.items():
        key = field.alias or name
        if key not in fleet_raw:
            if field.is_required():
                problems.append((key, f"{key}: required key is missing: add it (see the README's config reference)"))
            else:
                values[name] = field.get_default(call_default_factory=True)
            continue
        adapter = TypeAdapter(field.rebuild_annotation())
        try:
            values[name] = adapter.validate_python(fleet_raw[key])
        except ValidationError as e:
            problems += format_errors(e, "", FleetSpec, prefix=(key,))
            if typing.get_origin(field.annotation) is dict and isinstance(fleet_raw[key], dict):
                values[name] = _valid_entries(adapter, fleet_raw[key])  # nodes, apps: keep the good ones
                partly.add(name)
    partial = FleetSpec.model_construct(**values)
    problems += [(p.key, f"{p.key}: {p}") for p in partial.problems(secret_keys, app_secrets, validated=set(values),
                                                                    partly=frozenset(partly))]
    if problems:
        raise ConfigError("\n".join(line for _, line in sorted(set(problems))))
    return FleetSpec.model_validate(fleet_raw, context=context)


def _valid_entries(adapter: TypeAdapter[Any], raw: dict[str, Any]) -> dict[str, Any]:
    """The entries of a mapping (node → spec, app → spec) that validate on their own."""
    valid: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            valid.update(adapter.validate_python({key: value}))
        except ValidationError:
            pass  # reported with the whole mapping
    return valid


def parse_backup(raw: dict[str, Any]) -> BackupSpec:
    """Validate just the `backup` key (for tools that need nothing else); raise ConfigError (a line a mistake)."""
    try:
        return BackupSpec.model_validate(raw)
    except ValidationError as e:
        raise ConfigError("\n".join(line for _, line in sorted(format_errors(e, "backup", BackupSpec)))) from None


class StackConfigError(ConfigError, pulumi.RunError):
    """Raised at the program's edge; Pulumi prints a RunError's message without a traceback."""


@dataclass(frozen=True)
class AppSecretOutputs:
    microsoft_client_secret: pulumi.Output[str] | None
    openai_api_keys: pulumi.Output[str] | None  # ';'-joined, as OPENAI_API_KEYS wants
    # Secret Open WebUI variables by name: sign-in client secrets and appSecrets.<app>.env.
    env: dict[str, pulumi.Output[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Secrets:
    """Secret config values, each an `Output.secret`; absent keys are generated by the components."""
    given: dict[str, pulumi.Output[str]]
    apps: dict[str, AppSecretOutputs]

    def get(self, key: str) -> pulumi.Output[str] | None:
        return self.given.get(key)

    @property
    def names(self) -> set[str]:
        """The secret keys the stack sets."""
        return set(self.given)

    def lb_tls(self) -> tuple[pulumi.Output[str], pulumi.Output[str]] | None:
        """The load balancer's certificate and key, when they come from secrets."""
        cert, key = self.get("lbTlsCertificate"), self.get("lbTlsKey")
        return None if cert is None or key is None else (cert, key)


def load_stack_config() -> tuple[FleetSpec, Secrets]:
    """Read this stack's config, validate it and separate the secrets. Raises StackConfigError."""
    prefix = f"{PROJECT}:"
    raw = {k.removeprefix(prefix): _decode(k, v) for k, v in _all_config().items() if k.startswith(prefix)}
    for key in plaintext_secret_keys(raw, pulumi.runtime.is_config_secret):
        pulumi.log.warn(plaintext_warning(key))
    app_secrets_raw = raw.get("appSecrets", {})
    if not isinstance(app_secrets_raw, dict):
        raise StackConfigError("appSecrets: must be an object of app name → {microsoftClientSecret, googleClientSecret, "
                               "githubClientSecret, oidcClientSecret, openaiApiKeys, env}: write it with "
                               "pulumi config set --secret --path 'appSecrets.<app>.<key>' ...")
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
        clients = {"GOOGLE_CLIENT_SECRET": parsed.google_client_secret,
                   "GITHUB_CLIENT_SECRET": parsed.github_client_secret,
                   "OAUTH_CLIENT_SECRET": parsed.oidc_client_secret}
        apps[app] = AppSecretOutputs(
            microsoft_client_secret=_secret(parsed.microsoft_client_secret),
            openai_api_keys=_secret(";".join(parsed.openai_api_keys) or None),
            env={name: pulumi.Output.secret(value)
                 for name, value in {**parsed.env, **clients}.items() if value is not None})
    return fleet, Secrets(given, apps)


def plaintext_secret_keys(raw: dict[str, Any], is_secret: Callable[[str], bool]) -> list[str]:
    """The credential keys given in plaintext (not `secure:`) in the stack file."""
    return [k for k in SECRET_KEYS if k in raw and not is_secret(f"{PROJECT}:{k}")]


def plaintext_warning(key: str) -> str:
    """What to do about a credential in plaintext; never the value."""
    how = ("pulumi config set --secret --path 'appSecrets.<app>.<key>' <value> for each entry" if key == "appSecrets"
           else f"pulumi config set --secret {key} <value>")
    return (f"{key} is in the stack file in plaintext, readable by anyone with the repository: store it "
            f"encrypted with {how} (it replaces the plaintext line), and change the credential if the file "
            "was ever shared")


def _secret(value: str | None) -> pulumi.Output[str] | None:
    return None if value is None else pulumi.Output.secret(value)


def _all_config() -> dict[str, Any]:
    """Every config key the engine gave this program, with its value (secrets still plaintext here).

    Not public API: `pulumi.Config` reads one known key at a time and `pulumi.runtime.get_config_env()`
    sees only the PULUMI_CONFIG variable, while the language host (and the mocks) hand the map over
    with `set_all_config`, kept in `CONFIG`. Reporting unknown keys needs the whole map.
    """
    from pulumi.runtime import config as runtime_config
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def _decode(key: str, value: Any) -> Any:
    """Objects and lists arrive as JSON text; plain strings stay strings.

    Secret strings (a password may start with '{') are never parsed; `appSecrets` is an object, but
    a broken one is reported without its text. Any input gives a value or one message: too deep
    nesting and integers past Python's digit limit are errors too, not tracebacks.
    """
    short = key.removeprefix(f"{PROJECT}:")
    if not isinstance(value, str) or not value.startswith(("{", "[")):
        return value
    if short in SECRET_KEYS and short != "appSecrets":
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):  # JSONDecodeError, and int()'s digit limit, are ValueErrors
        text = "(not shown, it is a secret)" if short in SECRET_KEYS else shown(value, 40)
        raise StackConfigError(f"{key}: {text} starts like an object or list but is not valid "
                               "JSON: fix it, or quote the whole value as a string") from None
