"""Value types of the stack config: validated names, hosts, images, ports, and the base model.

Each type's message names the bad value and the fix; `Invalid` carries the key a rule is about.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel

from policy.image_refs import floating_tag

_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,22}[a-z0-9])?$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")


class ConfigError(Exception):
    """Stack config that cannot be deployed; the message says what to change."""


class Invalid(ValueError):
    """A rule broken at `key` (dotted, below the model that checks it); `format_error` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


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
    if re.fullmatch(r"[0-9.]+", value):  # looks like an IPv4 address, so a typo, not a name
        raise ValueError(f"'{value}' is not a valid IP address: give the node's IP (e.g. 10.0.5.24)")
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
    if "@" in value:
        if not re.search(r"@sha256:[0-9a-f]{64}$", value):
            raise ValueError(f"image '{value}' has a malformed digest: give @sha256: and 64 hex digits")
        return value
    repo, _, tag = value.rpartition(":")
    if not repo or "/" in tag or not any(c.isdigit() for c in tag) or floating_tag(tag):
        raise ValueError(f"image '{value}' is not pinned: give an explicit version tag "
                         "(e.g. ghcr.io/open-webui/open-webui:v0.12.4) or a digest")
    return value


def _hostname(value: str) -> str:
    if not _DNS_NAME.fullmatch(value) or "." not in value:
        raise ValueError(f"'{value}' is not a public hostname: give a lowercase DNS name such as chat.example.com")
    return value


def shaped(pattern: str, fix: str) -> AfterValidator:
    """A string matching `pattern`; a mismatch says `fix` rather than showing the regex."""
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"'{value}' {fix}")
        return value
    return AfterValidator(check)


Name = Annotated[str, AfterValidator(_name)]
Host = Annotated[str, AfterValidator(_host)]
BindAddress = Annotated[str, AfterValidator(_bind_address)]
Image = Annotated[str, AfterValidator(_pinned_image)]
Hostname = Annotated[str, AfterValidator(_hostname)]
Url = Annotated[str, shaped(r"https?://\S+", "is not an http(s) URL: give e.g. http://10.0.5.24:11434")]
AbsolutePath = Annotated[str, shaped(r"/\S+", "is not an absolute path: give e.g. /etc/ssl/certs/chat.pem")]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
Count = Annotated[int, Strict(), Field(ge=1, le=100)]
MemoryMb = Annotated[int, Strict(), Field(ge=256)]
Cpus = Annotated[float, Field(gt=0, le=64)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel,
                              populate_by_name=True)
