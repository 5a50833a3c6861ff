"""TLS between nodes (`sharedServices.tls: true`): where certificates live in containers, and the
server and client settings that use them. Pure text; the certificates come from pulumi-tls.

Servers refuse clear text: PostgreSQL's pg_hba rejects every non-TLS TCP connection, Redis listens
on TLS only. Clients verify the server against the fleet CA and its name (verify-full, rediss://).
"""
from __future__ import annotations

TLS_DIR = "/etc/openwebui-fleet/tls"
CA_FILE = f"{TLS_DIR}/ca.crt"
CERT_FILE = f"{TLS_DIR}/server.crt"
KEY_FILE = f"{TLS_DIR}/server.key"
# PostgreSQL reads its key only if the postgres user owns it with mode 0600: the entrypoint copies it.
POSTGRES_KEY_COPY = "/var/lib/postgresql/server.key"
POSTGRES_HBA_FILE = f"{TLS_DIR}/pg_hba.conf"
# MinIO finds its certificate by name in a directory (--certs-dir); CAs/ holds CAs it trusts.
MINIO_CERTS_DIR = f"{TLS_DIR}/minio"
MINIO_CERT_FILE, MINIO_KEY_FILE = f"{MINIO_CERTS_DIR}/public.crt", f"{MINIO_CERTS_DIR}/private.key"
# Open WebUI's Qdrant client (httpx) and aiohttp trust SSL_CERT_FILE only, instead of the public roots:
# the replica writes the public roots plus the fleet CA here when it starts.
CA_BUNDLE = "/tmp/openwebui-fleet-ca-bundle.pem"

# The socket inside the container stays as the image has it (init scripts, pg_isready); every TCP
# client must use TLS and a password.
POSTGRES_HBA = """\
# TYPE    DATABASE  USER  ADDRESS  METHOD
local     all       all            trust
hostssl   all       all   all      scram-sha-256
host      all       all   all      reject
"""


def postgres_tls_args(key_file: str = POSTGRES_KEY_COPY, cert_file: str = CERT_FILE,
                      hba_file: str = POSTGRES_HBA_FILE) -> list[str]:
    """`postgres` server options for TLS-only TCP."""
    return ["-c", "ssl=on", "-c", f"ssl_cert_file={cert_file}", "-c", f"ssl_key_file={key_file}",
            "-c", "ssl_min_protocol_version=TLSv1.2", "-c", f"hba_file={hba_file}"]


def postgres_tls_command(server_command: list[str]) -> list[str]:
    """The postgres container's command: copy the key where PostgreSQL accepts it, then start
    `server_command` (`postgres -c …`) with the TLS options; arguments pass as argv, never re-split."""
    return ["sh", "-c", f'install -m 0600 -o postgres -g postgres {KEY_FILE} {POSTGRES_KEY_COPY} && '
                        'exec docker-entrypoint.sh "$@"', "sh", *server_command, *postgres_tls_args()]


def postgres_client_env() -> dict[str, str]:
    """libpq's settings for psql and pg_dump: TLS, the fleet CA, and the server's name checked."""
    return {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": CA_FILE}


def postgres_url_query() -> str:
    """What a postgresql:// URL's query (Open WebUI's DATABASE_URL) adds for the same checks (no `?`)."""
    return f"sslmode=verify-full&sslrootcert={CA_FILE}"


def redis_tls_args(port: int, cert_file: str = CERT_FILE, key_file: str = KEY_FILE,
                   ca_file: str = CA_FILE) -> list[str]:
    """redis-server options: TLS on `port`, no clear-text port; clients need no certificate."""
    return ["--port", "0", "--tls-port", str(port), "--tls-cert-file", cert_file, "--tls-key-file", key_file,
            "--tls-ca-cert-file", ca_file, "--tls-auth-clients", "no", "--tls-protocols", "TLSv1.2 TLSv1.3"]


def redis_cli_tls_args(ca_file: str = CA_FILE) -> list[str]:
    """redis-cli's options to reach the TLS port and verify it (health check, the users step)."""
    return ["--tls", "--cacert", ca_file]


def redis_url(user: str, password_quoted: str, endpoint: str, tls: bool) -> str:
    """A redis:// or rediss:// URL (redis-py hands unknown query keys, ssl_ca_certs, to SSL)."""
    if not tls:
        return f"redis://{user}:{password_quoted}@{endpoint}/0"
    return f"rediss://{user}:{password_quoted}@{endpoint}/0?ssl_ca_certs={CA_FILE}&ssl_cert_reqs=required"


def server_names(container: str, node_address: str) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) a shared service's certificate is valid for: its container name on
    the node's network and the node's address other nodes use, plus loopback for health checks."""
    return [container, "localhost"], sorted({node_address, "127.0.0.1"})


def qdrant_tls_env() -> dict[str, str]:
    """Qdrant's settings (config keys as QDRANT__SECTION__KEY): HTTPS on its REST and gRPC ports. Its
    default config names a CA file (for client certificates, which it does not ask for): ours is there."""
    return {"QDRANT__SERVICE__ENABLE_TLS": "true", "QDRANT__TLS__CERT": CERT_FILE, "QDRANT__TLS__KEY": KEY_FILE,
            "QDRANT__TLS__CA_CERT": CA_FILE}


def minio_server_command(data_dir: str, tls: bool) -> list[str]:
    return ["server", "--certs-dir", MINIO_CERTS_DIR, data_dir] if tls else ["server", data_dir]


def minio_health_command(tls: bool) -> str:
    """`mc ready` on the server's own port; over TLS mc (Go) trusts SSL_CERT_FILE, here the fleet CA."""
    if not tls:
        return "mc ready local"
    return f"MC_HOST_local=https://localhost:9000 SSL_CERT_FILE={CA_FILE} mc ready local"


def openwebui_tls_command() -> list[str]:
    """The Open WebUI image's command (`bash start.sh` in /app/backend), after writing CA_BUNDLE: the
    image's public roots (certifi's, which Open WebUI's clients use by default) plus the fleet CA."""
    return ["bash", "-c", f'cat "$(python -m certifi)" {CA_FILE} > {CA_BUNDLE} && exec bash start.sh']


def openwebui_tls_env() -> dict[str, str]:
    """What makes Open WebUI's other clients trust the fleet CA too: httpx (Qdrant) and aiohttp read
    SSL_CERT_FILE, boto3 (S3) reads AWS_CA_BUNDLE; the bundle keeps the public roots for model APIs."""
    return {"SSL_CERT_FILE": CA_BUNDLE, "AWS_CA_BUNDLE": CA_BUNDLE}
