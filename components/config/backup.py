"""`backup`: where backups go, when they run and how long they are kept."""

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Literal, Self

from pydantic import Field, Strict, field_validator, model_validator

from components.config.errors import shown
from components.config.types import Days, Invalid, Model, Port, Region, endpoint
from fleet_backup.schedule import validate_cron

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
    object_lock: bool = False  # S3 Object Lock enabled on an existing versioned bucket


# MinIO: versioning yes; SSE-S3 needs a KMS (KES) and transitions need remote tiers, so both off.
# generic: assume only the core object + lifecycle-expiration API (e.g. Hetzner, Ceph RGW).
PROVIDER_FEATURES: dict[str, ProviderFeatures] = {
    "aws": ProviderFeatures(versioning=True, encryption=True, public_access_block=True, transitions=True,
                            object_lock=True),
    "minio": ProviderFeatures(versioning=True, encryption=False, public_access_block=False, transitions=False),
    "generic": ProviderFeatures(versioning=False, encryption=False, public_access_block=False,
                                transitions=False),
}

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_MIN_30_DAYS = {"STANDARD_IA", "ONEZONE_IA"}  # S3 rejects transitions to these before day 30
_RULE_ID = re.compile(r"[A-Za-z0-9._-]{1,255}")
_PREFIX = re.compile(r"(?:[A-Za-z0-9._-]+/)+")


class Transition(Model):
    days: Days
    storage_class: StorageClass


class RetentionRule(Model):
    """Expire objects under `prefix` after `days`; one S3 lifecycle rule."""
    prefix: str
    days: Days
    noncurrent_days: Days | None = None
    abort_multipart_days: Days = 1
    transitions: tuple[Transition, ...] = ()
    id: str | None = None  # default derived from the prefix, see rule_id

    @property
    def rule_id(self) -> str:
        return self.id or "expire-" + (self.prefix.strip("/").replace("/", "-") or "all")


def _default_retention() -> tuple[RetentionRule, ...]:
    return (RetentionRule(prefix="backups/", days=30, noncurrent_days=7),)


_ENDPOINT = endpoint("is not a URL; use https://<host>[:port] (no user, path, spaces or quotes)")


class CopyTo(Model):
    """A second bucket (another store or region) every run is copied to and verified in."""
    bucket: str
    endpoint: str | None = None  # absent = AWS
    region: str = "us-east-1"

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?", v):
            raise Invalid("", f"{v!r} is not a URL; use https://<host>[:port] (keys go in backupCopyAccessKeyId "
                              "and backupCopySecretAccessKey)")
        return v


class BackupSpec(Model):
    """Where backups go, when they run and how long they are kept."""
    bucket: str
    provider: ProviderName = "aws"
    endpoint: Annotated[str, _ENDPOINT] | None = None
    # The endpoint as the backup job on the shared node reaches it, when that differs (e.g. the
    # fleet's own MinIO: 127.0.0.1:9000 for Pulumi, the container name for the job).
    job_endpoint: Annotated[str, _ENDPOINT] | None = None
    region: Region = "us-east-1"
    schedule: str = "0 2 * * *"
    retention: tuple[RetentionRule, ...] = _default_retention()
    # After each successful run, delete all but the newest N runs (never the newest verified one).
    keep_last: Annotated[int, Strict(), Field(ge=1, le=10000)] | None = None
    # When to run a restore drill (`verify`) on the latest backup, e.g. "0 5 * * 0"; None = never.
    verify_schedule: str | None = None
    # The job's Prometheus metrics, published on the shared node's address.
    metrics_port: Port = 9464
    # S3 Object Lock (COMPLIANCE): every object version is undeletable for this many days.
    lock_days: Annotated[int, Strict(), Field(ge=1, le=36500)] | None = None
    copy_to: CopyTo | None = None

    @property
    def features(self) -> ProviderFeatures:
        return PROVIDER_FEATURES[self.provider]

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, v: str) -> str:
        fix = "use 3-63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit"
        if not _BUCKET_NAME.fullmatch(v) or ".." in v or ".-" in v or "-." in v:
            raise Invalid("", f"{shown(v)} is not a valid S3 bucket name; {fix}")
        if v.startswith(("xn--", "sthree-")) or v.endswith(("-s3alias", "--ol-s3")):
            raise Invalid("", f"{shown(v)} uses a prefix/suffix S3 reserves; choose another name")
        try:
            ipaddress.IPv4Address(v)
        except ValueError:
            return v
        raise Invalid("", f"{shown(v)} looks like an IP address, which S3 rejects; choose a name")

    @field_validator("schedule", "verify_schedule")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            return validate_cron(v)  # the job's own check: what passes here, the job accepts
        except ValueError:
            raise Invalid("", f"{shown(v)} is not a 5-field cron expression (UTC); e.g. \"0 2 * * *\"") from None

    @model_validator(mode="after")
    def _cross_checks(self) -> Self:
        if self.provider == "aws" and self.endpoint is not None:
            raise Invalid("endpoint", f"{shown(self.endpoint)} is set but provider is 'aws'; remove endpoint, "
                                       "or set provider: minio or generic for an S3-compatible store")
        if self.provider != "aws":
            if self.endpoint is None:
                raise Invalid("endpoint", f"missing for provider {self.provider!r}; set endpoint: "
                                           "https://<host> of the S3-compatible store")
        if not self.retention:
            raise Invalid("retention", "is empty; add at least one rule, e.g. {prefix: backups/, days: 30}")
        if self.lock_days is not None:
            if not self.features.object_lock:
                raise Invalid("lockDays", f"provider {self.provider!r} has no S3 Object Lock here; remove lockDays "
                                          "(AWS supports it; MinIO only on buckets created with locking)")
            short = [i for i, r in enumerate(self.retention) if r.days < self.lock_days]
            if short:
                raise Invalid("lockDays", f"{self.lock_days} is longer than retention[{short[0]}].days "
                                          f"({self.retention[short[0]].days}): objects could not expire when "
                                          "their rule says; make lockDays at most the shortest retention")
        if self.copy_to is not None and (self.copy_to.bucket, self.copy_to.endpoint) == (self.bucket, self.endpoint):
            raise Invalid("copyTo.bucket", f"{self.copy_to.bucket!r} is the backup bucket itself; the copy must go "
                                           "to another bucket or store")
        seen_ids: dict[str, int] = {}
        for i, rule in enumerate(self.retention):
            self._check_rule(f"retention[{i}]", rule)
            if rule.rule_id in seen_ids:
                raise Invalid(f"retention[{i}].id", f"{shown(rule.rule_id)} is also the id of "
                                                     f"retention[{seen_ids[rule.rule_id]}]; give each rule a unique id")
            seen_ids[rule.rule_id] = i
        for i, a in enumerate(self.retention):
            for j, b in enumerate(self.retention):
                if i != j and b.prefix.startswith(a.prefix):
                    raise Invalid(f"retention[{j}].prefix",
                                   f"{shown(b.prefix)} lies under retention[{i}].prefix {shown(a.prefix)}, so both rules "
                                   "would apply; use prefixes that do not contain each other")
        return self

    def _check_rule(self, key: str, rule: RetentionRule) -> None:
        if not rule.prefix or not rule.prefix.endswith("/") or rule.prefix.startswith("/"):
            raise Invalid(f"{key}.prefix", f"{shown(rule.prefix)} must be a folder like 'backups/prod/' "
                                            "(no leading '/', ending in '/')")
        if not _PREFIX.fullmatch(rule.prefix) or any(p in (".", "..") for p in rule.prefix.split("/")):
            raise Invalid(f"{key}.prefix", f"{shown(rule.prefix)} must be folders of letters, digits, '.', '_' "
                                            "or '-' without '.' or '..' segments, like 'backups/prod/'")
        if rule.id is not None and not _RULE_ID.fullmatch(rule.id):
            raise Invalid(f"{key}.id", f"{shown(rule.id)} must be 1-255 letters, digits, '.', '_' or '-'")
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

