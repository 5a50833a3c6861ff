"""The whole stack config and the rules that span its parts (placement, ports, names, secrets)."""

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, Self

from pydantic import ValidationError, ValidationInfo, model_validator
from pydantic.alias_generators import to_snake

from components.config.analytics import AnalyticsSpec
from components.config.apps import AppSecrets, AppSpec
from components.config.backup import BackupSpec
from components.config.budgets import (JOB_CONNECTIONS, AppLoad, BudgetError, check_node, check_postgres,
                                      check_redis)
from components.config.firewall import FirewallSpec
from components.config.load_balancer import LoadBalancerSpec
from components.config.nodes import NodeSpec
from components.config.postgres_settings import connection_limit, effective_settings
from components.config.shared_services import SharedServicesSpec
from components.config.types import Invalid, Model, Name, SshOpts, SshUser
from components.render.openwebui_env import OPENWEBUI_ENV_NAMES, managed_env_names
from components.render.openwebui_settings import OAUTH_SECRETS

# Secrets that external services cannot do without (in docker mode they are generated).
EXTERNAL_REQUIRED_SECRETS = ("postgresPassword", "redisPassword", "qdrantApiKey",
                             "objectStorageAccessKey", "objectStorageSecretKey")
# The report job's keys to the backup bucket, when the program cannot create its user there.
ANALYTICS_STORE_SECRETS = ("analyticsAccessKeyId", "analyticsSecretAccessKey")


class FleetSpec(Model):
    nodes: dict[Name, NodeSpec]
    shared_services: SharedServicesSpec
    apps: dict[Name, AppSpec]
    load_balancer: LoadBalancerSpec | None = None
    backup: BackupSpec | None = None
    analytics: AnalyticsSpec | None = None
    firewall: FirewallSpec = FirewallSpec()
    ssh_user: SshUser | None = None
    ssh_opts: SshOpts = []
    # Open WebUI variables for every app; an app's env wins.
    common_env: dict[str, str] = {}

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Self:
        context = info.context or {}
        problems = self.problems(context.get("secrets", set()), context.get("app_secrets", {}))
        if problems:
            raise problems[0]
        return self

    def problems(self, secrets: set[str], app_secrets: dict[str, Any], validated: set[str] | None = None,
                 partly: frozenset[str] = frozenset()) -> list[Invalid]:
        """Every rule that spans parts of the config and is broken, sorted by key.

        `validated` names the fields that hold validated values (the others are absent, see
        `stack.parse_fleet`), `partly` those among them that hold only the entries that validated
        (`nodes`, `apps`). A rule runs when every field it reads is validated, whole or, where the rule
        cannot be misled by a missing entry, partly.
        """
        # rule, the fields it reads, those of them it may read partly
        rules: list[tuple[Callable[[], Iterator[Invalid]], set[str], set[str]]] = [
            (self._check_not_empty, {"nodes", "apps"}, set()),
            (self._check_nodes, {"nodes", "ssh_user"}, {"nodes"}),
            (self._check_placement, {"nodes", "shared_services", "load_balancer", "apps"}, {"apps"}),
            (lambda: _check_env("commonEnv", self.common_env), {"common_env"}, set()),
            (lambda: self._check_apps(app_secrets), {"apps", "shared_services", "common_env"}, {"apps"}),
            (lambda: self._check_app_secrets(app_secrets), {"apps"}, set()),
            (self._check_ports, {"nodes", "shared_services", "load_balancer", "apps"}, {"nodes", "apps"}),
            (lambda: self._check_backup_credentials(secrets), {"backup", "shared_services"}, set()),
            (lambda: self._check_analytics(secrets), {"analytics", "backup", "shared_services"}, set()),
            (self._check_backup_over_fleet_tls, {"backup", "shared_services"}, set()),
            (lambda: self._check_tls(secrets), {"load_balancer"}, set()),
            (self._check_host_keys, {"nodes", "load_balancer"}, set()),
            (lambda: self._check_external_secrets(secrets), {"shared_services"}, set()),
            (self._check_budgets, {"apps", "nodes", "shared_services", "backup"}, set()),
            (self._check_firewall, {"firewall", "nodes"}, {"nodes"}),
        ]
        whole = None if validated is None else validated - partly
        found = [p for rule, reads, may_be_partial in rules
                 if whole is None or all(f in whole or (f in partly and f in may_be_partial) for f in reads)
                 for p in rule()]
        return sorted(found, key=lambda p: p.key)

    def _check_not_empty(self) -> Iterator[Invalid]:
        if not self.nodes:
            yield Invalid("nodes", "{} has no node: add at least one, e.g. nodes: {master: {host: 10.0.0.2}}")
        if not self.apps:
            yield Invalid("apps", "{} has no app: add at least one with a hostname and replicas")

    def _check_backup_credentials(self, secrets: set[str]) -> Iterator[Invalid]:
        if self.backup is not None and not {"backupAccessKeyId", "backupSecretAccessKey"} <= secrets:
            if self.backup.provider != "minio" or self.shared_services.mode == "external":
                yield Invalid("backup", "needs the store's credentials: pulumi config set --secret "
                              "backupAccessKeyId ... and backupSecretAccessKey ... (only provider 'minio' "
                              "on the fleet's own MinIO can use the fleet's credentials)")

    def reports_on_fleet_storage(self, secrets: set[str]) -> bool:
        """The report job's bucket is the fleet's own MinIO, where the program creates its user."""
        return (self.analytics is not None and self.backup is not None and self.backup.provider == "minio"
                and self.shared_services.mode == "docker" and "backupAccessKeyId" not in secrets)

    def _check_analytics(self, secrets: set[str]) -> Iterator[Invalid]:
        if self.analytics is None:
            return
        if self.backup is None:
            yield Invalid("analytics", "writes its reports to the backup bucket, but backup is not set: "
                          "configure backup, or remove analytics")
            return
        given = sorted(set(ANALYTICS_STORE_SECRETS) & secrets)
        if self.reports_on_fleet_storage(secrets):
            if given:
                yield Invalid(given[0], "is set, but reports go to the fleet's own MinIO, where the program "
                              "creates the report job's user (limited to reports/): remove it")
        elif len(given) < 2:
            yield Invalid("analytics", "needs its own keys to the backup bucket, never the backup job's: create "
                          "a key on the store allowed only reports/ in bucket "
                          f"{self.backup.bucket} (put, get, delete; list that prefix), then pulumi config set "
                          "--secret analyticsAccessKeyId ... and analyticsSecretAccessKey ...")

    def _check_backup_over_fleet_tls(self) -> Iterator[Invalid]:
        # Pulumi's own S3 client (the bucket's provider) would have to trust a CA made in the same deploy.
        if self.backup is not None and self.backup.provider == "minio" and self.shared_services.mode == "docker" \
                and self.shared_services.tls:
            yield Invalid("backup.provider", "'minio' keeps backups in the fleet's own MinIO, which "
                          "sharedServices.tls: true makes HTTPS-only with a CA Pulumi's S3 client does not "
                          "trust: send backups to another store (provider aws, or generic for another MinIO), "
                          "or remove sharedServices.tls")

    def _check_firewall(self) -> Iterator[Invalid]:
        if not self.firewall.enabled:
            return
        for name, node in sorted(self.nodes.items()):
            if node.host is None:
                yield Invalid("firewall.enabled", f"true applies nftables rules over SSH, but node '{name}' has "
                              f"no host: give nodes.{name}.host, or set firewall.enabled: false")
                return

    def _check_external_secrets(self, secrets: set[str]) -> Iterator[Invalid]:
        if self.shared_services.mode == "external":
            missing = [k for k in EXTERNAL_REQUIRED_SECRETS if k not in secrets]
            if missing:
                yield Invalid("sharedServices.mode", f"'external' needs the services' credentials as secrets, "
                              f"missing {', '.join(missing)}: pulumi config set --secret <key> ... for each")

    def _check_tls(self, secrets: set[str]) -> Iterator[Invalid]:
        lb = self.load_balancer
        tls_secrets = {"lbTlsCertificate", "lbTlsKey"} & secrets
        if lb is None or lb.tls is None:
            if tls_secrets:
                yield Invalid(sorted(tls_secrets)[0], "is set but loadBalancer.tls is not: add "
                              "loadBalancer.tls: {} to serve HTTPS with it, or remove the secret")
            return
        if lb.tls.from_secrets:
            if lb.mode == "native":
                yield Invalid("loadBalancer.tls", "{} (certificate from secrets) works in mode docker only: "
                              "in mode native give certificatePath and keyPath on the host")
            elif len(tls_secrets) < 2:
                yield Invalid("loadBalancer.tls", "{} takes the certificate and key from secrets: "
                              "pulumi config set --secret lbTlsCertificate < fullchain.pem and "
                              "pulumi config set --secret lbTlsKey < privkey.pem")
        elif tls_secrets:
            yield Invalid("loadBalancer.tls", "gives certificatePath and keyPath and the secrets "
                          f"{', '.join(sorted(tls_secrets))} are set too: keep one of the two")

    def _check_host_keys(self) -> Iterator[Invalid]:
        lb = self.load_balancer
        if lb is not None and lb.mode == "native" and lb.node in self.nodes and self.nodes[lb.node].ssh_host_key is None:
            yield Invalid(f"nodes.{lb.node}.sshHostKey", f"missing: mode 'native' runs commands on node "
                          f"'{lb.node}' over SSH, which must check the host's key: give one line of "
                          f"`ssh-keyscan -t ed25519 {self.nodes[lb.node].host}` whose fingerprint you checked")

    def _check_nodes(self) -> Iterator[Invalid]:
        userless = sorted(n for n, node in self.nodes.items()
                          if node.docker_host is None and not (node.ssh_user or self.ssh_user))
        if len(userless) == 1:
            name = userless[0]
            yield Invalid(f"nodes.{name}", f"host '{self.nodes[name].host}' is reached over SSH but no user is "
                          f"set: set sshUser (for every node) or nodes.{name}.sshUser")
        elif userless:  # one mistake, one line
            yield Invalid("sshUser", f"is not set and nodes {', '.join(userless)} are reached over SSH: set "
                          "sshUser (for every node) or each node's sshUser")
        seen: dict[str, str] = {}
        for name, node in self.nodes.items():
            if node.engine in seen:
                yield Invalid(f"nodes.{name}", f"{node.engine} is the same Docker engine as nodes.{seen[node.engine]}: "
                              "remove one, or give each node its own host")
            seen.setdefault(node.engine, name)

    def _check_placement(self) -> Iterator[Invalid]:
        known = ", ".join(sorted(self.nodes))
        placed = [("sharedServices.node", self.shared_services.node)]
        if self.load_balancer is not None:
            placed.append(("loadBalancer.node", self.load_balancer.node))
        placed += [(f"apps.{app}.replicas", node) for app, spec in self.apps.items() for node in spec.replicas]
        for key, node in placed:
            if node not in self.nodes:
                yield Invalid(key, f"node '{node}' is not under nodes (known: {known})")
        lb = self.load_balancer
        if lb is not None and lb.mode == "native" and lb.node in self.nodes and self.nodes[lb.node].host is None:
            yield Invalid("loadBalancer.mode", f"'native' writes nginx's config over SSH, but node "
                          f"'{lb.node}' has no host: give nodes.{lb.node}.host or use mode: docker")

    def _check_apps(self, app_secrets: dict[str, Any]) -> Iterator[Invalid]:
        hostnames: dict[str, str] = {}
        for name, app in self.apps.items():
            if app.hostname in hostnames:
                yield Invalid(f"apps.{name}.hostname", f"'{app.hostname}' is already apps.{hostnames[app.hostname]}'s: "
                              "give each app its own hostname")
            hostnames.setdefault(app.hostname, name)
            if app.use_shared_ollama and not self.shared_services.ollama.enabled:
                yield Invalid(f"apps.{name}.useSharedOllama", "true needs sharedServices.ollama.enabled: true: "
                              "enable it, or point the app at an Ollama with ollamaUrls")
            away = sorted(set(app.replicas) - {self.shared_services.node})
            if app.use_shared_ollama and self.shared_services.ollama.enabled and away:
                yield Invalid(f"apps.{name}.useSharedOllama", f"true, but replicas on {', '.join(away)} cannot reach "
                              "the shared Ollama: it has no authentication, so it is never published on the "
                              f"network; place the app on node '{self.shared_services.node}' only, or give an "
                              "Ollama behind an authenticating proxy in ollamaUrls")
            yield from _check_env(f"apps.{name}.env", app.env)
            secrets = _app_secrets(app_secrets.get(name))
            if secrets is None:  # malformed: stack.parse_fleet reports it, a second line would add noise
                continue
            yield from _check_env(f"appSecrets.{name}.env", secrets.env)
            for variable in sorted(set(secrets.env) & (set(app.env) | set(self.common_env))):
                yield Invalid(f"appSecrets.{name}.env", f"{variable} is also set in plain env or commonEnv: keep "
                              "it only in appSecrets")
            if app.microsoft_oauth and secrets.microsoft_client_secret is None:
                yield Invalid(f"apps.{name}.microsoftOAuth", f"clientId '{app.microsoft_oauth.client_id}' needs its "
                              "client secret: pulumi config set --secret --path "
                              f"'appSecrets.{name}.microsoftClientSecret' ...")
            for provider in app.oauth.providers() if app.oauth is not None else []:
                key = OAUTH_SECRETS[provider][0]
                public = provider == "oidc" and app.oauth is not None and app.oauth.oidc is not None \
                    and app.oauth.oidc.code_challenge is not None
                if getattr(secrets, to_snake(key)) is None and not public:
                    yield Invalid(f"apps.{name}.oauth.{provider}", "needs its client secret: pulumi config set "
                                  f"--secret --path 'appSecrets.{name}.{key}' ..." +
                                  (" (or codeChallenge: S256 for a public client)" if provider == "oidc" else ""))
        # Replica names are '<app>-<node>-<n>'; two different pairs must not spell the same name.
        spelled: dict[str, tuple[str, str]] = {}
        for app, spec in self.apps.items():
            for node in spec.replicas:
                other = spelled.setdefault(f"{app}-{node}", (app, node))
                if other != (app, node):
                    yield Invalid(f"apps.{app}.replicas.{node}", f"apps.{app} on node '{node}' and apps.{other[0]} "
                                  f"on node '{other[1]}' give replicas the same name '{app}-{node}-N': "
                                  "rename an app or a node")

    def _check_app_secrets(self, app_secrets: dict[str, Any]) -> Iterator[Invalid]:
        for stray in sorted(set(app_secrets) - set(self.apps)):
            yield Invalid(f"appSecrets.{stray}", f"no app named '{stray}' "
                          f"(apps: {', '.join(sorted(self.apps))}): rename or remove it")

    def _check_budgets(self) -> Iterator[Invalid]:
        """Connections to PostgreSQL and Redis, and the replicas' limits on each node (config/budgets.py)."""
        loads = [AppLoad(name=name, replicas=app.replicas,
                         db_connections_per_replica=app.database_pool.connections_per_replica,
                         pool_size=app.database_pool.size, max_overflow=app.database_pool.max_overflow,
                         redis_connections_per_replica=app.redis_connections_per_replica,
                         memory_mb=app.memory_mb, cpus=app.cpus) for name, app in sorted(self.apps.items())]
        checks: list[Callable[[], None]] = [lambda: check_redis(loads, self.shared_services.redis.maxclients)]
        shared_node = self.nodes.get(self.shared_services.node)
        if self.shared_services.mode == "docker" and shared_node is not None:
            settings = effective_settings(self.shared_services.postgres.settings, shared_node.memory_mb)
            max_connections = int(settings["max_connections"])
            jobs = JOB_CONNECTIONS if self.backup is not None else {}
            checks.insert(0, lambda: check_postgres(loads, max_connections,
                                                    max_connections - connection_limit(settings), jobs))
        checks += [lambda n=name, node=node: check_node(n, node.memory_mb, node.cpus, loads)
                   for name, node in sorted(self.nodes.items())]
        for check in checks:
            try:
                check()
            except BudgetError as e:
                yield Invalid(e.key, str(e))

    def _check_ports(self) -> Iterator[Invalid]:
        used: dict[str, dict[int, str]] = defaultdict(dict)  # node → host port → what holds it

        def claim(key: str, value: int, wants: dict[str, list[tuple[int, str]]]) -> Iterator[Invalid]:
            """Give `key` (set to `value`) the ports it wants on each node, or say what to set it to."""
            for node, ports in wants.items():
                taken = next((port for port, _ in ports if port in used[node]), None)
                if taken is not None:
                    width = max(len(p) for p in wants.values())
                    free = next((start for start in range(value + 1, 65537 - width)
                                 if all(start + i not in used[n] for n in wants for i in range(width))), None)
                    fix = f"set {key} to a free port, e.g. {free}" if free is not None else f"lower {key}"
                    yield Invalid(key, f"{value} collides on node {node}: port {taken} is already "
                                  f"used by {used[node][taken]}: {fix}")
                    return  # one line per key; its ports stay free for the keys after it
            for node, ports in wants.items():
                used[node].update(ports)

        for name, node in sorted(self.nodes.items()):
            if node.host is not None:  # sshd holds it on every address of the host
                yield from claim(f"nodes.{name}.sshPort", node.ssh_port,
                                 {name: [(node.ssh_port, f"nodes.{name}.sshPort")]})
        if self.shared_services.mode == "docker":
            for port, key in self.shared_services.published_ports():
                yield from claim(key, port, {self.shared_services.node: [(port, key)]})
        if self.load_balancer is not None:
            for port, key in self.load_balancer.published_ports():
                yield from claim(key, port, {self.load_balancer.node: [(port, key)]})
        for name, app in self.apps.items():
            yield from claim(f"apps.{name}.port", app.port, {
                node: [(app.host_port(n), f"apps.{name}.port (replica {n})") for n in range(1, count + 1)]
                for node, count in app.replicas.items()})



def _app_secrets(given: Any) -> AppSecrets | None:
    """`appSecrets.<app>` parsed, or None when malformed (its own problem is reported elsewhere)."""
    try:
        return AppSecrets.model_validate(given or {})
    except ValidationError:
        return None


def _check_env(key: str, env: dict[str, str]) -> Iterator[Invalid]:
    """Operator-given Open WebUI variables: names Open WebUI reads, none the program manages."""
    managed = sorted(set(env) & managed_env_names())
    if managed:
        yield Invalid(key, f"sets {', '.join(managed)}, which the program manages: "
                      "remove it from env (see the README's config reference)")
    for variable in sorted(set(env) - OPENWEBUI_ENV_NAMES):
        yield Invalid(key, f"'{variable}' is not a variable Open WebUI reads: "
                      "check its spelling against Open WebUI's environment documentation")
