"""Shell scripts that put a rendered nginx.conf live: validate first, swap atomically, reload.

A config that fails `nginx -t` never replaces the working one, and nginx is reloaded
(gracefully: old workers finish their requests), never restarted.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Sequence


def install_file_lines(staged: str, live: str) -> list[str]:
    """Atomically replace `live` with `staged`, readable by its owner only (a key, say)."""
    s, lv = shlex.quote(staged), shlex.quote(live)
    return [f"mkdir -p {shlex.quote(os.path.dirname(live))}", f"cp {s} {lv}.next", f"chmod 600 {lv}.next",
            f"mv -f {lv}.next {lv}"]


def install_config_lines(staging: str, live: str, nginx: str = "nginx", sudo: bool = False) -> list[str]:
    """Validate the file at shell word `staging`, then atomically replace `live` with it."""
    run = "sudo -n " if sudo else ""
    lv = shlex.quote(live)
    return [
        f"{run}{nginx} -t -q -c {staging}",
        f"{run}cp {staging} {lv}.next",
        f"{run}mv -f {lv}.next {lv}",
        f"echo openwebui-fleet: nginx config installed at {lv}",
    ]


def install_config_script(staging: str, live: str, nginx: str = "nginx",
                          files: Sequence[tuple[str, str]] = (),
                          placeholders: Sequence[tuple[str, str]] = ()) -> str:
    """For the nginx container: staged `files` (e.g. a certificate) go live first, then the staged
    config is validated against them and installed; the reload loop picks both up.

    `placeholders` go live only while the first target is missing (a self-signed certificate that lets
    nginx start before the ACME client has issued the real one, which it then never overwrites).
    """
    lines = ["set -eu"]
    for staged, target in files:
        lines += install_file_lines(staged, target)
    if placeholders:
        steps = [line for staged, target in placeholders for line in install_file_lines(staged, target)]
        lines += [f"if [ ! -s {shlex.quote(placeholders[0][1])} ]; then", *("  " + s for s in steps), "fi"]
    return "\n".join(lines + install_config_lines(shlex.quote(staging), live, nginx))


def install_and_reload_script(live: str, sudo: bool, nginx: str = "nginx") -> str:
    """For an nginx already on the host: config on stdin → validate → install → reload."""
    run = "sudo -n " if sudo else ""
    return "\n".join([
        "set -eu", 'staging="$(mktemp)"', 'trap \'rm -f "$staging"\' EXIT', 'cat > "$staging"',
        *install_config_lines('"$staging"', live, nginx, sudo),
        # -c: the pid file is the one the installed config names, wherever that file lives.
        f"{run}{nginx} -s reload -c {shlex.quote(live)}",
    ])


def reload_loop_script(conf: str, nginx: str = "nginx", interval_s: int = 2,
                       watch: Sequence[str] = ()) -> str:
    """Container entrypoint: run nginx on `conf` and reload it whenever that file (or one of
    `watch`, e.g. the certificate) changes.

    The config is written by a separate one-shot step, so the nginx container itself is never
    replaced because its config changed.
    """
    c = shlex.quote(conf)
    files = " ".join(shlex.quote(f) for f in (conf, *watch))
    return f"""\
{nginx} -c {c} -g 'daemon off;' &
master=$!
trap 'kill -QUIT $master; wait $master; exit 0' TERM INT
applied="$(cat {files} | cksum)"
while kill -0 "$master" 2>/dev/null; do
  sleep {interval_s} & wait $!
  current="$(cat {files} | cksum)"
  [ "$current" = "$applied" ] && continue
  applied="$current"
  if {nginx} -t -q -c {c}; then
    {nginx} -s reload -c {c} && echo "openwebui-fleet: nginx reloaded"
  else
    echo "openwebui-fleet: new nginx config rejected by nginx -t; still serving the old one" >&2
  fi
done
wait "$master"
"""
