"""The ACME client's loop, as shell for a lego container beside nginx: issue, renew, hand over.

lego answers HTTP-01 through nginx (it writes tokens into the webroot nginx serves at
/.well-known/acme-challenge/). A new certificate is moved into place key first, each file
atomically, so nginx's reload loop (nginx_runtime.reload_loop_script, watching both files) never
loads a half-written file and retries until the pair matches.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


@dataclass(frozen=True)
class Acme:
    email: str
    directory: str
    # One certificate for every app hostname (sorted: lego names its files after the first).
    domains: tuple[str, ...]
    webroot: str  # served by nginx at /.well-known/acme-challenge/
    state_dir: str  # lego's account and certificates (--path)
    certificate_path: str  # where nginx reads the certificate (full chain)
    key_path: str
    renew_days: int = 30  # renew when fewer days are left
    interval_s: int = 12 * 3600
    # After a failure (DNS not pointing here yet, say): soon, but within Let's Encrypt's 5 failed
    # validations per hostname and hour.
    retry_s: int = 15 * 60
    # lego sleeps up to 8 minutes before a renewal so that many hosts do not renew at once.
    random_sleep: bool = True


def acme_loop_script(a: Acme, lego: str = "lego") -> str:
    """Container entrypoint: every interval, issue (first time or new hostnames) or renew, then hand over."""
    domains = sorted(a.domains)
    if not domains:
        raise ValueError("ACME needs at least one domain")
    q = shlex.quote
    issued = f"{a.state_dir}/certificates/{domains[0].replace('*', '_')}"
    common = " ".join([lego, "--accept-tos", f"--email {q(a.email)}", f"--server {q(a.directory)}",
                       f"--path {q(a.state_dir)}", f"--http --http.webroot {q(a.webroot)}",
                       *(f"--domains {q(d)}" for d in domains)])
    renew_flags = f"--days {a.renew_days}" + ("" if a.random_sleep else " --no-random-sleep")
    wanted = " ".join(domains)
    return f"""\
set -u
trap 'exit 0' TERM INT
mkdir -p {q(a.webroot)} {q(a.state_dir)}
install_file() {{  # $1 -> $2 atomically, unless already there
  cmp -s "$1" "$2" && return 0
  mkdir -p "$(dirname "$2")" && cp "$1" "$2.next" && chmod 600 "$2.next" && mv -f "$2.next" "$2"
}}
while :; do
  if [ -s {q(issued + '.crt')} ] && [ "$(cat {q(a.state_dir + '/domains')} 2>/dev/null)" = {q(wanted)} ]; then
    {common} renew {renew_flags}
  else
    {common} run && echo {q(wanted)} > {q(a.state_dir + '/domains')}
  fi
  if [ $? -ne 0 ]; then
    echo "openwebui-fleet: ACME request failed; trying again in {a.retry_s}s" >&2
    wait_s={a.retry_s}
  else
    wait_s={a.interval_s}
    if [ -s {q(issued + '.crt')} ]; then
      install_file {q(issued + '.key')} {q(a.key_path)} && install_file {q(issued + '.crt')} {q(a.certificate_path)}
    fi
  fi
  sleep "$wait_s" & wait $!
done
"""
