"""Typed, validated `openwebui-fleet:backup` stack config (to be folded into components/config.py).

Stack config shape (camelCase keys; every key but `bucket` has a default):

    backup:
      bucket: openwebui-fleet-backups-prod
      provider: aws            # aws | minio | generic: which bucket features the endpoint has
      endpoint: https://...    # required for minio/generic, not allowed for aws
      region: eu-central-1
      schedule: "0 2 * * *"    # 5-field cron, UTC
      retention:
        - {prefix: backups/prod/, days: 30, noncurrentDays: 7, abortMultipartDays: 1,
           transitions: [{days: 7, storageClass: STANDARD_IA}]}

Every rejection is one message naming the key, the bad value and the fix; use
`describe_validation_error` at the program's edge to turn a ValidationError into that line.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

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


def _invalid(key: str, message: str) -> PydanticCustomError:
    """A validation error whose ctx carries the key (relative to the model that raised it)."""
    return PydanticCustomError("fleet_config", "{message}", {"message": message, "key": key})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel,
                              populate_by_name=True)


class Transition(_Model):
    days: int
    storage_class: StorageClass


class RetentionRule(_Model):
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


class BackupConfig(_Model):
    """Where backups go, when they run and how long they are kept."""
    bucket: str
    provider: ProviderName = "aws"
    endpoint: str | None = None
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
            raise _invalid("", f"{v!r} is not a valid S3 bucket name; {fix}")
        if v.startswith(("xn--", "sthree-")) or v.endswith(("-s3alias", "--ol-s3")):
            raise _invalid("", f"{v!r} uses a prefix/suffix S3 reserves; choose another name")
        try:
            ipaddress.IPv4Address(v)
        except ValueError:
            return v
        raise _invalid("", f"{v!r} looks like an IP address, which S3 rejects; choose a name")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        if len(v.split()) != 5 or not croniter.is_valid(v):
            raise _invalid("", f"{v!r} is not a 5-field cron expression (UTC); e.g. \"0 2 * * *\"")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> BackupConfig:
        if self.provider == "aws" and self.endpoint is not None:
            raise _invalid("endpoint", f"{self.endpoint!r} is set but provider is 'aws'; remove endpoint, "
                                       "or set provider: minio or generic for an S3-compatible store")
        if self.provider != "aws":
            if self.endpoint is None:
                raise _invalid("endpoint", f"missing for provider {self.provider!r}; set endpoint: "
                                           "https://<host> of the S3-compatible store")
            if not re.match(r"^https?://[^/\s]+/?$", self.endpoint):
                raise _invalid("endpoint", f"{self.endpoint!r} is not a URL; use https://<host>[:port]")
        if not self.retention:
            raise _invalid("retention", "is empty; add at least one rule, e.g. {prefix: backups/, days: 30}")
        seen_ids: dict[str, int] = {}
        for i, rule in enumerate(self.retention):
            self._check_rule(f"retention[{i}]", rule)
            if rule.rule_id in seen_ids:
                raise _invalid(f"retention[{i}].id", f"{rule.rule_id!r} is also the id of "
                                                     f"retention[{seen_ids[rule.rule_id]}]; give each rule a unique id")
            seen_ids[rule.rule_id] = i
        for i, a in enumerate(self.retention):
            for j, b in enumerate(self.retention):
                if i != j and b.prefix.startswith(a.prefix):
                    raise _invalid(f"retention[{j}].prefix",
                                   f"{b.prefix!r} lies under retention[{i}].prefix {a.prefix!r}, so both rules "
                                   "would apply; use prefixes that do not contain each other")
        return self

    def _check_rule(self, key: str, rule: RetentionRule) -> None:
        if not rule.prefix or not rule.prefix.endswith("/") or rule.prefix.startswith("/"):
            raise _invalid(f"{key}.prefix", f"{rule.prefix!r} must be a folder like 'backups/prod/' "
                                            "(no leading '/', ending in '/')")
        if rule.id is not None and not _RULE_ID.match(rule.id):
            raise _invalid(f"{key}.id", f"{rule.id!r} must be 1-255 letters, digits, '.', '_' or '-'")
        for field, value in (("days", rule.days), ("abortMultipartDays", rule.abort_multipart_days),
                             ("noncurrentDays", rule.noncurrent_days)):
            if value is not None and value <= 0:
                raise _invalid(f"{key}.{field}", f"{value} must be greater than 0; set a number of days >= 1")
        if rule.noncurrent_days is not None and not self.features.versioning:
            raise _invalid(f"{key}.noncurrentDays",
                           f"{rule.noncurrent_days} is set but provider {self.provider!r} has no versioning; "
                           "remove noncurrentDays")
        if rule.transitions and not self.features.transitions:
            raise _invalid(f"{key}.transitions", f"provider {self.provider!r} does not support storage-class "
                                                 "transitions; remove transitions")
        for t_index, t in enumerate(rule.transitions):
            t_key = f"{key}.transitions[{t_index}].days"
            if t.days <= 0:
                raise _invalid(t_key, f"{t.days} must be greater than 0; set a number of days >= 1")
            if t.storage_class in _MIN_30_DAYS and t.days < 30:
                raise _invalid(t_key, f"{t.days} is too early for {t.storage_class} (S3 requires >= 30 days); "
                                      "use days >= 30 or storageClass GLACIER_IR/GLACIER")
            if t.days >= rule.days:
                raise _invalid(t_key, f"{t.days} is not before the expiration ({key}.days = {rule.days}); "
                                      f"use fewer than {rule.days} days or drop the transition")


def _render_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def describe_validation_error(err: ValidationError, root: str = "backup") -> str:
    """One readable line for the first error: `<key>: <bad value and fix>`."""
    e = err.errors()[0]
    key = root + _render_loc(tuple(e["loc"]))
    ctx = e.get("ctx") or {}
    if e["type"] == "fleet_config":
        sub = ctx.get("key", "")
        key += ("" if not sub else ("" if sub.startswith("[") else ".") + sub)
        return f"{key}: {ctx['message']}"
    if e["type"] == "extra_forbidden":
        return f"{key}: unknown key; remove it or check its spelling"
    return f"{key}: {e['msg']} (got {e.get('input')!r})"


class BackupConfigError(ValueError):
    """Invalid backup config; str() is the one-line message for the user."""


def load_backup_config(raw: dict[str, Any], root: str = "backup") -> BackupConfig:
    """Validate stack config `backup` or raise BackupConfigError with one readable line."""
    try:
        return BackupConfig.model_validate(raw)
    except ValidationError as err:
        raise BackupConfigError(describe_validation_error(err, root)) from None
