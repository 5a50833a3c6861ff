"""`loadBalancer`: nginx in front of every app."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict, model_validator

from components.config.types import AbsolutePath, Image, Invalid, Model, Name, Port, shaped


class TlsSpec(Model):
    """Certificate and key as paths on the load balancer's host, or (both paths absent, docker
    mode) from the secrets lbTlsCertificate and lbTlsKey."""
    certificate_path: AbsolutePath | None = None
    key_path: AbsolutePath | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> TlsSpec:
        if (self.certificate_path is None) != (self.key_path is None):
            raise Invalid("", "give both certificatePath and keyPath, or neither (then the certificate "
                          "and key come from the secrets lbTlsCertificate and lbTlsKey)")
        return self

    @property
    def from_secrets(self) -> bool:
        return self.certificate_path is None


class LoadBalancerSpec(Model):
    node: Name
    mode: Literal["docker", "native"] = "docker"
    image: Image = "nginx:1.27.3-alpine"
    http_port: Port = 80
    https_port: Port = 443
    tls: TlsSpec | None = None
    client_max_body_size_mb: Annotated[int, Strict(), Field(ge=1, le=10240)] = 100
    proxy_read_timeout_s: Annotated[int, Strict(), Field(ge=30)] = 3600
    max_fails: Annotated[int, Strict(), Field(ge=1)] = 3
    fail_timeout_s: Annotated[int, Strict(), Field(ge=1)] = 10
    keepalive: Annotated[int, Strict(), Field(ge=1)] = 32
    health_path: Annotated[str, shaped(r"/[A-Za-z0-9/_-]*",
                                        "is not a plain URL path: give e.g. /lb-health")] = "/lb-health"
    # native mode: the file the host's nginx loads, replaced whole; sudo when not logging in as root.
    native_conf_path: AbsolutePath = "/etc/nginx/nginx.conf"
    native_sudo: bool = True

    def published_ports(self) -> list[tuple[int, str]]:
        ports = [(self.http_port, "loadBalancer.httpPort")]
        if self.tls is not None:
            ports.append((self.https_port, "loadBalancer.httpsPort"))
        return ports

