"""Value types of the stack config: validated names, hosts, images, ports, and the base model.

Each type's message names the bad value and the fix; `Invalid` carries the key a rule is about.
"""

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
        raise ValueError(f"{_shown(value)} is not a valid name: use 1-24 lowercase letters, digits and '-', "
                         "starting with a letter (e.g. 'slave1')")
    return value


def _host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", value):  # looks like an IPv4 address, so a typo, not a name
        raise ValueError(f"{_shown(value)} is not a valid IP address: give the node's IP (e.g. 10.0.5.24)")
    if not _DNS_NAME.fullmatch(value):
        raise ValueError(f"{_shown(value)} is neither an IP address nor a DNS name: "
                         "give the node's IP (e.g. 10.0.5.24) or hostname")
    return value


def _bind_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{_shown(value)} is not an IP address: give the IP this node publishes "
                         "services on (e.g. 10.0.5.24, or 127.0.0.1 for a local engine)") from None
    if address.is_unspecified:
        raise ValueError(f"{_shown(value)} would publish on every interface: give the node's own address")
    return str(address)


def _pinned_image(value: str) -> str:
    if "@" in value and not re.fullmatch(r"[^@]+@sha256:[0-9a-f]{64}", value):
        raise ValueError(f"image {_shown(value)} has a malformed digest: give @sha256: and 64 hex digits")
    if not re.fullmatch(_IMAGE, value):
        raise ValueError(f"image {_shown(value)} is not an image reference: give e.g. "
                         "ghcr.io/open-webui/open-webui:v0.12.4 (no spaces, quotes or ';')")
    if "@" in value:
        return value
    repo, _, tag = value.rpartition(":")
    if not repo or "/" in tag or not any(c.isdigit() for c in tag) or floating_tag(tag):
        raise ValueError(f"image {_shown(value)} is not pinned: give an explicit version tag "
                         "(e.g. ghcr.io/open-webui/open-webui:v0.12.4) or a digest")
    return value


def _hostname(value: str) -> str:
    if not _DNS_NAME.fullmatch(value) or "." not in value:
        raise ValueError(f"{_shown(value)} is not a public hostname: give a lowercase DNS name such as chat.example.com")
    return value


def shaped(pattern: str, fix: str) -> AfterValidator:
    """A string matching `pattern`; a mismatch says `fix` rather than showing the regex."""
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"{_shown(value)} {fix}")
        return value
    return AfterValidator(check)


# ── grammars for values that reach a shell, a URL, nginx.conf or a path (whole-string matches) ──

_HOST_PART = (r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
              r"|\[[0-9a-fA-F:.]+\])")
_PORT_PART = r"(?::[0-9]{1,5})?"
_SSH_USER = r"[A-Za-z_][A-Za-z0-9_.-]{0,31}"
_PATH = r"(?:/[A-Za-z0-9._@+=,-]+)+"
# Docker's reference grammar (distribution/reference): [registry[:port]/]path[:tag][@digest].
_IMAGE = (r"(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?/)?"
          r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
          r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?")
# ssh options a stack may pass to the Docker provider's ssh: none of them runs a command.
_SSH_OPTIONS = frozenset({"StrictHostKeyChecking", "UserKnownHostsFile", "ConnectTimeout", "ServerAliveInterval",
                          "ServerAliveCountMax", "IdentityFile", "IdentitiesOnly", "Port", "HostKeyAlgorithms",
                          "KexAlgorithms", "Ciphers", "MACs", "ConnectionAttempts", "BatchMode",
                          "LogLevel", "Compression", "AddressFamily", "HashKnownHosts", "CheckHostIP"})


def _shown(value: str, limit: int = 60) -> str:
    """A value for a message: quoted, cut when long."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{_shown(value)} is not an absolute path: give e.g. /etc/ssl/certs/chat.pem")
    if not re.fullmatch(_PATH, value):
        raise ValueError(f"{_shown(value)} is not a plain absolute path: use letters, digits and . _ @ + = , - "
                         "between slashes (no spaces, quotes or ;{}#$ that nginx or a shell would read)")
    if any(part in (".", "..") for part in value.split("/")):
        raise ValueError(f"{_shown(value)} has a '.' or '..' segment: give the file's own absolute path")
    return value


def _ssh_user(value: str) -> str:
    if not re.fullmatch(_SSH_USER, value):
        raise ValueError(f"{_shown(value)} is not a user name: use letters, digits, '_', '.' and '-', "
                         "starting with a letter or '_' (e.g. deploy)")
    return value


def _ssh_opts(value: list[str]) -> list[str]:
    """Only `-o Name=value` pairs with a known, command-free option (never ProxyCommand & co.)."""
    args = iter(value)
    for arg in args:
        option = next(args, None) if arg == "-o" else arg.removeprefix("-o") if arg.startswith("-o") else None
        if option is None or not re.fullmatch(r"[A-Za-z]+=[A-Za-z0-9_.,/@:+-]+", option):
            raise ValueError(f"{_shown(arg)} is not an '-o Name=value' ssh option: give e.g. "
                             "[\"-o\", \"StrictHostKeyChecking=yes\"]")
        name, _, setting = option.partition("=")
        if (name, setting.lower()) in (("StrictHostKeyChecking", "no"), ("StrictHostKeyChecking", "off"),
                                       ("UserKnownHostsFile", "/dev/null")):
            raise ValueError(f"{_shown(option)} turns off the host key check: keep the nodes' host keys in "
                             "known_hosts and use StrictHostKeyChecking=yes")
        if name not in _SSH_OPTIONS:
            raise ValueError(f"ssh option {_shown(name)} is not allowed (options that run commands or proxy the "
                             f"connection never are): use one of {', '.join(sorted(_SSH_OPTIONS))}")
    return value


def _ssh_host_key(value: str) -> str:
    if not re.fullmatch(r"(?:ssh-ed25519|ecdsa-sha2-nistp(?:256|384|521)|rsa-sha2-(?:256|512)|ssh-rsa) "
                        r"[A-Za-z0-9+/]{40,}={0,3}", value):
        raise ValueError(f"{_shown(value)} is not an SSH host key: give 'TYPE BASE64' as one line of "
                         "ssh-keyscan's output (e.g. ssh-ed25519 AAAAC3Nza…), checked against the host's "
                         "fingerprint")
    return value


def _docker_host(value: str) -> str:
    if not re.match(r"(unix|ssh|tcp)://", value):
        raise ValueError(f"{_shown(value)} must start with unix://, ssh:// or tcp://")
    if not (re.fullmatch(r"unix://" + _PATH, value)
            or re.fullmatch(rf"ssh://(?:{_SSH_USER}@)?{_HOST_PART}{_PORT_PART}", value)
            or re.fullmatch(rf"tcp://{_HOST_PART}:[0-9]{{1,5}}", value)):
        raise ValueError(f"{_shown(value)} is not a Docker endpoint: give unix:///var/run/docker.sock, "
                         "ssh://user@host[:port] or tcp://host:port")
    return value


def _url(value: str) -> str:
    if not re.fullmatch(rf"https?://{_HOST_PART}{_PORT_PART}(?:/[A-Za-z0-9._~%!&'()*+,=:@/-]*)?", value):
        raise ValueError(f"{_shown(value)} is not an http(s) URL: give e.g. http://10.0.5.24:11434"
                         + (" (no user:password, spaces, quotes or ';')" if value.startswith("http") else ""))
    return value


def endpoint(fix: str) -> AfterValidator:
    """scheme://host[:port] of an S3-compatible store and nothing more; `fix` ends the message."""
    def check(value: str) -> str:
        if not re.fullmatch(rf"https?://{_HOST_PART}{_PORT_PART}/?", value):
            raise ValueError(f"{_shown(value)} {fix}")
        return value
    return AfterValidator(check)


def _region(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?", value):
        raise ValueError(f"{_shown(value)} is not a region: use lowercase letters, digits and '-' (e.g. us-east-1)")
    return value


def _bucket(value: str) -> str:
    fix = "use 3-63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit"
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value) or ".." in value or ".-" in value \
            or "-." in value:
        raise ValueError(f"{_shown(value)} is not a valid S3 bucket name; {fix}")
    return value


def _pg_user(value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise ValueError(f"{_shown(value)} is not a PostgreSQL role name: use lowercase letters, digits and '_' "
                         "(e.g. postgres)")
    return value


Name = Annotated[str, AfterValidator(_name)]
Host = Annotated[str, AfterValidator(_host)]
BindAddress = Annotated[str, AfterValidator(_bind_address)]
Image = Annotated[str, AfterValidator(_pinned_image)]
Hostname = Annotated[str, AfterValidator(_hostname)]
Url = Annotated[str, AfterValidator(_url)]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]
SshUser = Annotated[str, AfterValidator(_ssh_user)]
SshOpts = Annotated[list[str], AfterValidator(_ssh_opts)]
DockerHost = Annotated[str, AfterValidator(_docker_host)]
SshHostKey = Annotated[str, AfterValidator(_ssh_host_key)]
Region = Annotated[str, AfterValidator(_region)]
BucketName = Annotated[str, AfterValidator(_bucket)]
PgUser = Annotated[str, AfterValidator(_pg_user)]
Days = Annotated[int, Strict()]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
Count = Annotated[int, Strict(), Field(ge=1, le=100)]
MemoryMb = Annotated[int, Strict(), Field(ge=256)]
Cpus = Annotated[float, Strict(), Field(gt=0, le=64)]


# The model modules leave out `from __future__ import annotations`: pydantic would compile and evaluate
# each annotation string when it builds a class (a cold `python -m plan` builds them all).
class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel,
                              populate_by_name=True)
