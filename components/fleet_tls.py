"""The fleet's own CA and one server certificate per shared service (`sharedServices.tls: true`).

Keys are pulumi-tls resources, secret in Pulumi's state; they reach a container only as an upload
(`server_files`), never as env, argv or a label. Clients get the CA certificate alone (`ca_file`).
"""
from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_docker as docker

from components.render.tls import CA_FILE, CERT_FILE, KEY_FILE, server_names

CA_VALIDITY_HOURS = 10 * 365 * 24
SERVER_VALIDITY_HOURS = 2 * 365 * 24
# A deploy in the last 30 days of a server certificate re-issues it (and restarts that service).
EARLY_RENEWAL_HOURS = 30 * 24


class FleetTls(pulumi.ComponentResource):
    """A CA, and a key and certificate signed by it for each service container on the shared node."""

    def __init__(self, name: str, services: Sequence[str], node_address: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("openwebui-fleet:index:FleetTls", name, None, opts)
        import pulumi_tls as tls  # here: only stacks with tls on load the package (cold `python -m plan`)
        child = pulumi.ResourceOptions(parent=self)
        # Protected: a new CA key re-issues every certificate and replaces every client container at
        # once (all replicas restart together), so it changes only on purpose.
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256",
                                opts=pulumi.ResourceOptions(parent=self, protect=True))
        ca = tls.SelfSignedCert(
            f"{name}-ca", private_key_pem=ca_key.private_key_pem, is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name="openwebui-fleet CA",
                                                  organization=pulumi.get_stack()),
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            validity_period_hours=CA_VALIDITY_HOURS,
            opts=pulumi.ResourceOptions(parent=self, protect=True))
        self.ca_pem: pulumi.Output[str] = ca.cert_pem
        self._servers: dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]] = {}
        for container in services:
            key = tls.PrivateKey(f"{name}-{container}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
            dns_names, ip_addresses = server_names(container, node_address)
            request = tls.CertRequest(
                f"{name}-{container}-request", private_key_pem=key.private_key_pem,
                subject=tls.CertRequestSubjectArgs(common_name=container),
                dns_names=dns_names, ip_addresses=ip_addresses, opts=child)
            cert = tls.LocallySignedCert(
                f"{name}-{container}", cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=ca_key.private_key_pem, ca_cert_pem=ca.cert_pem,
                allowed_uses=["server_auth", "digital_signature", "key_encipherment"],
                validity_period_hours=SERVER_VALIDITY_HOURS, early_renewal_hours=EARLY_RENEWAL_HOURS,
                opts=child)
            # PKCS#8: the one key format PostgreSQL, Redis, MinIO (Go) and Qdrant (rustls) all read.
            self._servers[container] = (cert.cert_pem, pulumi.Output.secret(key.private_key_pem_pkcs8))
        self.register_outputs({})

    def ca_file(self, path: str = CA_FILE) -> docker.ContainerUploadArgs:
        """The CA certificate for a client (public: it only lets the client check servers)."""
        return docker.ContainerUploadArgs(file=path, content=self.ca_pem)

    def server_files(self, container: str, cert_file: str = CERT_FILE,
                     key_file: str = KEY_FILE) -> list[docker.ContainerUploadArgs]:
        """`container`'s certificate and key (the key secret), and the CA."""
        cert, key = self._servers[container]
        return [docker.ContainerUploadArgs(file=cert_file, content=cert),
                docker.ContainerUploadArgs(file=key_file, content=key), self.ca_file()]
