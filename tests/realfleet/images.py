"""What each image the plan pins does when it starts, as a program on this machine.

A container becomes its image's program with the plan's env, command and uploads unchanged. Only paths
that exist inside the image (data dirs, temp paths, pid files, the upload targets) are rewritten to the
state directory; three images that cannot be installed here are stood in for (MinIO by moto's S3 server,
its `mc` client by boto3, Qdrant by tests/qdrant_stub.py). `Rewrites` records each change for printing.
"""
from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
PATH = ":".join([*(str(p) for p in PG_BIN[:1]), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
                 "/sbin", "/bin"])


def openwebui_venv() -> Path:
    return Path(os.environ.get("OPENWEBUI_VENV") or REPO / ".cache" / "openwebui-venv")


@dataclass
class Rewrites:
    """Every change the runner made to what the plan declared, in order."""

    lines: list[str] = field(default_factory=list)

    def add(self, container: str, what: str) -> None:
        line = f"{container}: {what}"
        self.lines.append(line)
        print(f"realfleet rewrite: {line}", flush=True)


def image_kind(image: str) -> str:
    """The image's repository, without tag: the key of what runs it here."""
    repo = image.rsplit("@", 1)[0]
    return repo.rsplit(":", 1)[0] if ":" in repo.rsplit("/", 1)[-1] else repo


def rewrite_paths(text: str, paths: dict[str, str]) -> str:
    """Image paths → state-dir paths, longest first (so /etc/nginx/fleet wins over /etc/nginx)."""
    for old in sorted(paths, key=len, reverse=True):
        text = text.replace(old, paths[old])
    return text


@dataclass
class Launch:
    """One container as a process: argv, env, working dir, and the user it runs as."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    user: str | None = None


def base_env(home: Path) -> dict[str, str]:
    return {"PATH": PATH, "HOME": str(home), "LANG": "C.UTF-8"}


def postgres_server(env: dict[str, str], data: Path, run_dir: Path, rw: Rewrites, name: str,
                    args: list[str]) -> list[str]:
    """The postgres image's entrypoint: initdb once with POSTGRES_USER/POSTGRES_PASSWORD, password auth
    from any host (`host all all all scram-sha-256`), then postgres listening on every address, with the
    plan's own arguments (`postgres -c ...`) after the image's."""
    rw.add(name, f"data dir /var/lib/postgresql/data -> {data}; socket dir /var/run/postgresql -> {run_dir}")
    initdb = shlex.join([str(PG_BIN[0] / "initdb"), "-D", str(data), "-U", env["POSTGRES_USER"],
                         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions",
                         f"--pwfile={run_dir / 'pw'}"])
    hba = shlex.quote(str(data / "pg_hba.conf"))
    return ["sh", "-c",
            f'if [ ! -s {shlex.quote(str(data / "PG_VERSION"))} ]; then '
            f'printf "%s" "$POSTGRES_PASSWORD" > {shlex.quote(str(run_dir / "pw"))} && {initdb} >/dev/null '
            f'&& rm -f {shlex.quote(str(run_dir / "pw"))} && echo "host all all all scram-sha-256" >> {hba}; fi; '
            f'exec {shlex.quote(str(PG_BIN[0] / "postgres"))} -D {shlex.quote(str(data))} '
            f"-c listen_addresses='*' -k {shlex.quote(str(run_dir))} {shlex.join(args)}"]


def qdrant_stub(port: int, rw: Rewrites, name: str) -> list[str]:
    """The stub reads Qdrant's own env (API key; QDRANT__SERVICE__ENABLE_TLS and the TLS files)."""
    rw.add(name, "qdrant/qdrant (not installable here) -> tests/qdrant_stub.py, the job's endpoints only")
    return [sys.executable, "-m", "tests.qdrant_stub", "--port", str(port)]


def minio_server(port: int, rw: Rewrites, name: str, certs_dir: Path | None = None) -> list[str]:
    """moto's S3 server; with MinIO's `--certs-dir` (public.crt, private.key) it serves HTTPS with them."""
    argv = [sys.executable, "-m", "moto.server", "-H", "0.0.0.0", "-p", str(port)]
    if certs_dir is None:
        rw.add(name, "minio/minio `server /data` (not installable here) -> moto's S3 server, in memory")
        return argv
    rw.add(name, f"minio/minio `server --certs-dir {certs_dir} /data` (not installable here) -> moto's S3 "
                 "server, in memory, HTTPS with that directory's public.crt and private.key")
    return [*argv, "--ssl-cert", str(certs_dir / "public.crt"), "--ssl-key", str(certs_dir / "private.key")]


MC_MAKE_BUCKET = """\
import os, sys, urllib.parse, boto3, botocore.exceptions
url = urllib.parse.urlsplit(os.environ["MC_HOST_fleet"])
# mc (Go) trusts SSL_CERT_FILE when it is set (the fleet CA with sharedServices.tls).
s3 = boto3.client("s3", endpoint_url=f"{url.scheme}://{url.hostname}:{url.port}", region_name="us-east-1",
                  verify=os.environ.get("SSL_CERT_FILE", True),
                  aws_access_key_id=urllib.parse.unquote(url.username),
                  aws_secret_access_key=urllib.parse.unquote(url.password))
try:
    s3.create_bucket(Bucket=sys.argv[1])
except botocore.exceptions.ClientError as e:
    if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
        raise
"""
MC_BUCKET = re.compile(r'^mc mb --ignore-existing "fleet/([a-z0-9.-]+)" >/dev/null$', re.M)
MC_ADMIN = re.compile(r"^(printf .* \| )?mc admin (policy create|user add|policy attach) fleet ", re.M)


def mc_setup(command: list[str], rw: Rewrites, name: str) -> list[str]:
    """The setup script: `mc mb` for the bucket, then per app a policy, a user and the attachment. moto's
    S3 server has no MinIO admin API and accepts any key, so only the bucket is made (with boto3, as the
    script's `MC_HOST_fleet` alias says); the users and policies are checked present in the script."""
    script = command[-1] if command else ""
    bucket = MC_BUCKET.search(script)
    if not bucket:
        raise ValueError(f"{name}: unknown mc script {command!r}")
    admin = MC_ADMIN.findall(script)
    rw.add(name, f"minio/mc `mc mb --ignore-existing fleet/{bucket[1]}` (not installable here) -> the same with "
                 f"boto3; its {len(admin)} `mc admin` user/policy steps skipped (moto has no admin API and "
                 "accepts any key)")
    return [sys.executable, "-c", MC_MAKE_BUCKET, bucket[1]]
