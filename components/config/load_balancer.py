"""`loadBalancer`: nginx in front of every app."""

import ipaddress
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, Strict, model_validator

from components.config.types import AbsolutePath, Image, Invalid, Model, Name, Port, Url, shaped
from components.render.acme import LETS_ENCRYPT


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"'{value}' is not an IP address or CIDR: give e.g. 173.245.48.0/20 or 10.0.0.5") from None


Cidr = Annotated[str, AfterValidator(_cidr)]
Email = Annotated[str, shaped(r"[^@\s]+@[^@\s]+\.[^@\s]+", "is not an email address: give e.g. ops@example.com")]
# The policies a browser understands (https://www.w3.org/TR/referrer-policy/).
ReferrerPolicy = Literal["no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
                         "same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url"]


class AcmeSpec(Model):
    """Certificates from an ACME CA (Let's Encrypt by default) for every app hostname, renewed by lego."""
    email: Email
    directory: Url = LETS_ENCRYPT
    image: Image = "goacme/lego:v4.21.0"


class TlsSpec(Model):
    """Certificate and key as paths on the load balancer's host, from ACME (`acme`), or (neither,
    docker mode) from the secrets lbTlsCertificate and lbTlsKey."""
    certificate_path: AbsolutePath | None = None
    key_path: AbsolutePath | None = None
    acme: AcmeSpec | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.certificate_path is None) != (self.key_path is None):
            raise Invalid("", "give both certificatePath and keyPath, or neither (then the certificate "
                          "and key come from the secrets lbTlsCertificate and lbTlsKey)")
        if self.acme is not None and self.certificate_path is not None:
            raise Invalid("acme", "and certificatePath/keyPath both say where the certificate comes from: "
                          "keep one of the two")
        return self

    @property
    def from_secrets(self) -> bool:
        return self.certificate_path is None and self.acme is None


class LoadBalancerSpec(Model):
    node: Name
    mode: Literal["docker", "native"] = "docker"
    image: Image = "nginx:1.27.3-alpine"
    http_port: Port = 80
    https_port: Port = 443
    tls: TlsSpec | None = None
    client_max_body_size_mb: Annotated[int, Strict(), Field(ge=1, le=10240)] = 100
    proxy_read_timeout_s: Annotated[int, Strict(), Field(ge=30)] = 3600
    api_read_timeout_s: Annotated[int, Strict(), Field(ge=5)] = 60
    max_fails: Annotated[int, Strict(), Field(ge=1)] = 3
    fail_timeout_s: Annotated[int, Strict(), Field(ge=1)] = 10
    keepalive: Annotated[int, Strict(), Field(ge=1)] = 32
    health_path: Annotated[str, shaped(r"/[A-Za-z0-9/_-]*",
                                        "is not a plain URL path: give e.g. /lb-health")] = "/lb-health"
    # native mode: the file the host's nginx loads, replaced whole; sudo when not logging in as root.
    native_conf_path: AbsolutePath = "/etc/nginx/nginx.conf"
    native_sudo: bool = True
    # At the edge (per client address, as nginx sees it: see trustedProxies).
    auth_rate_limit_per_minute: Annotated[int, Strict(), Field(ge=1, le=6000)] = 10
    auth_burst: Annotated[int, Strict(), Field(ge=1, le=1000)] = 10
    connections_per_address: Annotated[int, Strict(), Field(ge=1)] = 256
    hsts_max_age_s: Annotated[int, Strict(), Field(ge=0)] = 31536000
    referrer_policy: ReferrerPolicy = "strict-origin-when-cross-origin"
    # DENY is not offered: Open WebUI frames its own pages (file previews).
    frame_options: Literal["SAMEORIGIN", "off"] = "SAMEORIGIN"
    trusted_proxies: tuple[Cidr, ...] = ()
    real_ip_header: Annotated[str, shaped(r"[A-Za-z0-9-]+", "is not a header name: give e.g. X-Forwarded-For "
                                          "or CF-Connecting-IP")] = "X-Forwarded-For"
    static_cache_mb: Annotated[int, Strict(), Field(ge=0)] = 1024

    @model_validator(mode="after")
    def _acme_in_docker_mode(self) -> Self:
        if self.tls is not None and self.tls.acme is not None and self.mode == "native":
            raise Invalid("tls.acme", "runs lego in a container beside nginx: use mode docker, or give "
                          "certificatePath and keyPath that the host's own ACME client renews")
        return self

    def published_ports(self) -> list[tuple[int, str]]:
        ports = [(self.http_port, "loadBalancer.httpPort")]
        if self.tls is not None:
            ports.append((self.https_port, "loadBalancer.httpsPort"))
        return ports

