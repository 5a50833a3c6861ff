"""Stack config → a typed, validated fleet model.

The only place that knows defaults and validation rules. Components receive these objects, never
`pulumi.Config` or raw dicts. Every rule's message names the key, the bad value and the fix.

  types            value types (names, hosts, pinned images, ports) and the base model
  nodes, shared_services, apps, load_balancer, backup, analytics, firewall   one model module per config key
  fleet            the whole config and the rules that span its parts
  errors           pydantic's errors as one readable message
  stack            the edge: raw config (from Pulumi or a dict) in, a fleet or one message out
"""
from components.config.analytics import AnalyticsSpec, ModelPrice
from components.config.apps import OPENWEBUI_IMAGE, AppSecrets, AppSpec, MicrosoftOAuth
from components.config.backup import (PROVIDER_FEATURES, BackupSpec, ProviderFeatures, RetentionRule,
                                      Transition)
from components.config.errors import format_error
from components.config.firewall import FirewallSpec
from components.config.fleet import ANALYTICS_STORE_SECRETS, EXTERNAL_REQUIRED_SECRETS, FleetSpec
from components.config.load_balancer import AcmeSpec, LoadBalancerSpec, TlsSpec
from components.config.nodes import NodeSpec
from components.config.shared_services import (ExternalServices, ObjectStorage, Ollama, Postgres, Qdrant,
                                               Redis, SharedServicesSpec)
from components.config.stack import (PROJECT, SECRET_KEYS, AppSecretOutputs, Secrets, StackConfigError,
                                     load_stack_config, parse_backup, parse_fleet)
from components.config.types import ConfigError, Invalid
from components.render.openwebui_env import OPENWEBUI_ENV_NAMES

# The names before the `...Spec` renames, for code written against them.
App, Backup, Fleet, LoadBalancer, Node, SharedServices, Tls = (
    AppSpec, BackupSpec, FleetSpec, LoadBalancerSpec, NodeSpec, SharedServicesSpec, TlsSpec)

__all__ = [
    "ANALYTICS_STORE_SECRETS", "AcmeSpec", "AnalyticsSpec", "App", "AppSecretOutputs", "AppSecrets", "AppSpec", "Backup", "BackupSpec",
    "ConfigError", "EXTERNAL_REQUIRED_SECRETS", "ExternalServices", "FirewallSpec", "Fleet", "FleetSpec",
    "Invalid", "LoadBalancer", "LoadBalancerSpec", "MicrosoftOAuth", "ModelPrice", "OPENWEBUI_ENV_NAMES",
    "OPENWEBUI_IMAGE", "PROJECT", "PROVIDER_FEATURES", "SECRET_KEYS",
    "Node", "NodeSpec", "ObjectStorage", "Ollama", "Postgres", "ProviderFeatures", "Qdrant", "Redis",
    "RetentionRule", "Secrets", "SharedServices", "SharedServicesSpec", "StackConfigError", "Tls", "TlsSpec",
    "Transition", "format_error", "load_stack_config", "parse_backup", "parse_fleet",
]
