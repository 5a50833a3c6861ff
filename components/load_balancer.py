"""nginx in front of every app: one upstream per app, rendered from the fleet, reloaded gracefully."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pulumi
import pulumi_docker as docker

from components.config import LoadBalancerSpec
from components.node import FleetNode
from components.options import DependsOn, depends_on
from components.render.acme import Acme, acme_loop_script
from components.render.nginx import Edge, NginxSettings, Site, Tls, Upstream, render_nginx_conf
from components.render.nginx_runtime import (install_and_reload_script, install_config_script,
                                             reload_loop_script)
from components.topology import AppTopology

if TYPE_CHECKING:
    from pulumi_command import remote

LIVE_DIR = "/etc/nginx/fleet"
LIVE_CONF = f"{LIVE_DIR}/nginx.conf"
STAGED_CONF = "/staging/nginx.conf"
# A certificate from secrets lives in the config volume, next to the config that names it.
SECRET_TLS = Tls(f"{LIVE_DIR}/tls/fullchain.pem", f"{LIVE_DIR}/tls/privkey.pem")
# ACME: lego writes the certificate into the config volume too; HTTP-01 tokens go to a volume both share.
ACME_TLS = Tls(f"{LIVE_DIR}/acme/fullchain.pem", f"{LIVE_DIR}/acme/privkey.pem")
ACME_WEBROOT = "/var/www/acme"
ACME_STATE = "/acme"
LEGO = "/lego"  # where the goacme/lego image has it


def nginx_settings(spec: LoadBalancerSpec) -> NginxSettings:
    """Paths differ between the nginx image and a Debian-style host install."""
    in_container = spec.mode == "docker"
    return NginxSettings(
        http_port=spec.http_port, https_port=spec.https_port,
        tls=tls_files(spec),
        client_max_body_size_mb=spec.client_max_body_size_mb, health_path=spec.health_path,
        proxy_read_timeout_s=spec.proxy_read_timeout_s, api_read_timeout_s=spec.api_read_timeout_s,
        max_fails=spec.max_fails,
        fail_timeout_s=spec.fail_timeout_s, keepalive=spec.keepalive,
        pid_path="/var/run/nginx.pid" if in_container else "/run/nginx.pid",
        error_log="/dev/stderr" if in_container else "/var/log/nginx/error.log",
        access_log="/dev/stdout" if in_container else "/var/log/nginx/access.log",
        temp_dir="/var/cache/nginx" if in_container else "/var/lib/nginx",
        edge=edge_settings(spec))


def edge_settings(spec: LoadBalancerSpec) -> Edge:
    return Edge(
        auth_per_minute=spec.auth_rate_limit_per_minute, auth_burst=spec.auth_burst,
        connections_per_address=spec.connections_per_address, hsts_max_age_s=spec.hsts_max_age_s,
        referrer_policy=spec.referrer_policy,
        frame_options=None if spec.frame_options == "off" else spec.frame_options,
        trusted_proxies=spec.trusted_proxies, real_ip_header=spec.real_ip_header,
        static_cache_max_mb=spec.static_cache_mb or None,
        acme_webroot=ACME_WEBROOT if spec.tls is not None and spec.tls.acme is not None else None)


def acme_settings(spec: LoadBalancerSpec, hostnames: list[str]) -> Acme:
    assert spec.tls is not None and spec.tls.acme is not None
    return Acme(email=spec.tls.acme.email, directory=spec.tls.acme.directory, domains=tuple(sorted(hostnames)),
                webroot=ACME_WEBROOT, state_dir=ACME_STATE, certificate_path=ACME_TLS.certificate_path,
                key_path=ACME_TLS.key_path)


def tls_files(spec: LoadBalancerSpec) -> Tls | None:
    if spec.tls is None:
        return None
    if spec.tls.acme is not None:
        return ACME_TLS
    if spec.tls.from_secrets:
        return SECRET_TLS
    assert spec.tls.certificate_path and spec.tls.key_path
    return Tls(spec.tls.certificate_path, spec.tls.key_path)


def lb_nginx_conf(spec: LoadBalancerSpec, apps: Mapping[str, AppTopology]) -> str:
    """nginx.conf: one site per app, its upstreams as the topology says the load balancer reaches them."""
    sites = [Site(app.name, app.hostname, tuple(Upstream(e.host, e.port) for e in app.upstreams))
             for app in apps.values()]
    return render_nginx_conf(nginx_settings(spec), sites)


class NginxLoadBalancer(pulumi.ComponentResource):
    """nginx on one node, in a container (`docker`) or already on the host (`native`).

    A config change is installed only after `nginx -t` passes and is applied by a graceful
    reload: the nginx container is never replaced because its config changed.
    """

    def __init__(self, name: str, spec: LoadBalancerSpec, node: FleetNode, apps: Mapping[str, AppTopology],
                 tls_secrets: tuple[pulumi.Output[str], pulumi.Output[str]] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("openwebui-fleet:index:NginxLoadBalancer", name, None, opts)
        self.name = name
        self.nginx_conf = lb_nginx_conf(spec, apps)
        self.conf_sha256 = hashlib.sha256(self.nginx_conf.encode()).hexdigest()
        # The config is installed only once what it routes to exists (the apps, given in opts).
        after = depends_on(opts)
        if spec.mode == "docker":
            self._in_container(spec, node, after, tls_secrets, sorted(a.hostname for a in apps.values()))
        else:
            assert node.ssh is not None  # validation: mode native needs a node with a host
            self._on_host(spec, node.ssh, after)
        self.register_outputs({"confSha256": self.conf_sha256})

    def _in_container(self, spec: LoadBalancerSpec, node: FleetNode, after: DependsOn,
                      tls_secrets: tuple[pulumi.Output[str], pulumi.Output[str]] | None,
                      hostnames: list[str]) -> None:
        image = node.image(spec.image).image_id
        conf_volume = docker.Volume(f"{self.name}-conf", name="openwebui-lb-conf", opts=node.child_opts(self))
        mounts = [docker.ContainerVolumeArgs(volume_name=conf_volume.name, container_path=LIVE_DIR)]
        uploads = [docker.ContainerUploadArgs(file=STAGED_CONF, content=self.nginx_conf)]
        staged_files: list[tuple[str, str]] = []
        placeholders: list[tuple[str, str]] = []
        acme = spec.tls.acme if spec.tls is not None else None
        if acme is not None:
            webroot = docker.Volume(f"{self.name}-acme-webroot", name="openwebui-lb-acme-webroot",
                                    opts=node.child_opts(self))
            mounts.append(docker.ContainerVolumeArgs(volume_name=webroot.name, container_path=ACME_WEBROOT))
            for content, live in zip(self._placeholder(hostnames), (ACME_TLS.certificate_path, ACME_TLS.key_path)):
                staged = "/staging/acme/" + live.rsplit("/", 1)[1]
                uploads.append(docker.ContainerUploadArgs(file=staged, content=content))
                placeholders.append((staged, live))
        elif spec.tls is not None and tls_secrets is not None:
            for content, live in zip(tls_secrets, (SECRET_TLS.certificate_path, SECRET_TLS.key_path)):
                staged = "/staging/tls/" + live.rsplit("/", 1)[1]
                uploads.append(docker.ContainerUploadArgs(file=staged, content=pulumi.Output.secret(content)))
                staged_files.append((staged, live))
        elif spec.tls is not None:
            mounts += [docker.ContainerVolumeArgs(host_path=p, container_path=p, read_only=True)
                       for p in (spec.tls.certificate_path, spec.tls.key_path)]
        # One-shot: replaced on every config (or certificate) change; installs only if nginx -t passes.
        install = docker.Container(
            f"{self.name}-config", name="openwebui-lb-config", image=image,
            entrypoints=["sh", "-c"],
            command=[install_config_script(STAGED_CONF, LIVE_CONF, files=staged_files, placeholders=placeholders)],
            uploads=uploads,
            volumes=mounts, networks_advanced=node.networks, must_run=False, attach=True, logs=True,
            labels=[docker.ContainerLabelArgs(label="openwebui-fleet.nginx-conf-sha256", value=self.conf_sha256)],
            opts=node.child_opts(self, depends_on=after))
        ports = [docker.ContainerPortArgs(internal=p, external=p, ip=node.address)
                 for p, _ in spec.published_ports()]
        watched = [live for _, live in staged_files + placeholders]
        self.container = docker.Container(
            self.name, name="openwebui-lb", image=image,
            entrypoints=["sh", "-c"],
            command=[reload_loop_script(LIVE_CONF, watch=watched)],
            ports=ports, volumes=mounts, networks_advanced=node.networks, restart="unless-stopped",
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD-SHELL", f"wget -q -O /dev/null http://127.0.0.1:{spec.http_port}{spec.health_path}"],
                interval="10s", timeout="3s", retries=3, start_period="5s"),
            wait=True, wait_timeout=60,
            opts=node.child_opts(self, depends_on=[install]))
        if acme is not None:
            # lego's account key and certificates: losing them means issuing again, against the CA's rate limits.
            state = docker.Volume(f"{self.name}-acme-state", name="openwebui-lb-acme",
                                  opts=node.child_opts(self, protect=True, retain_on_delete=True))
            self.acme = docker.Container(
                f"{self.name}-acme", name="openwebui-lb-acme", image=node.image(acme.image).image_id,
                entrypoints=["sh", "-c"], command=[acme_loop_script(acme_settings(spec, hostnames), lego=LEGO)],
                volumes=[*mounts, docker.ContainerVolumeArgs(volume_name=state.name, container_path=ACME_STATE)],
                networks_advanced=node.networks, restart="unless-stopped",
                # nginx must answer the HTTP-01 challenges before lego asks for them.
                opts=node.child_opts(self, depends_on=[self.container]))

    def _placeholder(self, hostnames: list[str]) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """A self-signed certificate so nginx starts before the first issuance (never replaces a real one)."""
        import pulumi_tls as tls  # here: only stacks with ACME load the package (cold `python -m plan`)
        key = tls.PrivateKey(f"{self.name}-acme-placeholder-key", algorithm="ECDSA", ecdsa_curve="P256",
                             opts=pulumi.ResourceOptions(parent=self))
        cert = tls.SelfSignedCert(
            f"{self.name}-acme-placeholder", private_key_pem=key.private_key_pem, dns_names=hostnames,
            subject=tls.SelfSignedCertSubjectArgs(common_name="openwebui-fleet placeholder"),
            validity_period_hours=24 * 365, allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            opts=pulumi.ResourceOptions(parent=self))
        return cert.cert_pem, pulumi.Output.secret(key.private_key_pem)

    def _on_host(self, spec: LoadBalancerSpec, ssh: remote.ConnectionArgs, after: DependsOn) -> None:
        from pulumi_command import remote  # here: only stacks with a native nginx load the package
        script = install_and_reload_script(spec.native_conf_path, sudo=spec.native_sudo)
        self.command = remote.Command(
            f"{self.name}-config", connection=ssh, create=script, update=script, stdin=self.nginx_conf,
            triggers=[self.conf_sha256], opts=pulumi.ResourceOptions(parent=self, depends_on=after))
