"""Static asset through the LB: an immutable build file with nginx's cache vs without it.

    .venv/bin/python benchmarks/static_bench.py [--seconds 5] [--connections 32]

One stub replica serves the file (from Open WebUI's build when OPENWEBUI_VENV, default
.cache/openwebui-venv, has it; else a generated file of the same shape). Two nginx instances run the
rendered config side by side, one with the static cache and one without; `wrk` loads each in turn,
without and with `Accept-Encoding: gzip`. Everything is on 127.0.0.1 and stops by itself.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from components.config import LoadBalancerSpec  # noqa: E402
from components.load_balancer import edge_settings  # noqa: E402
from components.render.nginx import NginxSettings, Site, Upstream, render_nginx_conf  # noqa: E402
from realservices import free_port, loopback_conf, nginx_server, require_binary, stub_upstream  # noqa: E402

HOST = "chat.test"
EDGE = edge_settings(LoadBalancerSpec(node="lb"))  # the defaults


def asset(build: Path) -> str:
    """URL path of the file to fetch, laid out under `build` as Open WebUI ships its frontend."""
    venv = Path(os.environ.get("OPENWEBUI_VENV", ROOT / ".cache/openwebui-venv"))
    real = sorted(venv.glob("lib/python3*/site-packages/open_webui/frontend/_app/immutable/entry/app.*.js"))
    rel = "_app/immutable/entry/" + (real[0].name if real else "app.B8x2kQ1z.js")
    (build / rel).parent.mkdir(parents=True)
    (build / rel).write_bytes(real[0].read_bytes() if real else
                              b"".join(b"export const c%d=()=>'%d';\n" % (i, i * i) for i in range(4000)))
    return "/" + rel


def conf(prefix: Path, upstream_port: int, http_port: int, cached: bool) -> str:
    (prefix / "temp").mkdir(parents=True)
    s = NginxSettings(http_port=80, https_port=443, tls=None, client_max_body_size_mb=25, health_path="/lb-health",
                      proxy_read_timeout_s=600, api_read_timeout_s=60, max_fails=3, fail_timeout_s=10, keepalive=32,
                      pid_path=str(prefix / "nginx.pid"), error_log=str(prefix / "error.log"),
                      access_log="off", temp_dir=str(prefix / "temp"),
                      edge=replace(EDGE, static_cache_max_mb=EDGE.static_cache_max_mb if cached else None))
    text = render_nginx_conf(s, [Site("chat", HOST, (Upstream("127.0.0.1", upstream_port),))])
    return loopback_conf(text, {80: http_port, 443: free_port()}, {}, {})


def wrk(port: int, path: str, seconds: int, connections: int, gzip: bool) -> float:
    argv = [require_binary("wrk", "apt-get install wrk"), "-t2", f"-c{connections}", f"-d{seconds}s",
            "-H", f"Host: {HOST}", *(["-H", "Accept-Encoding: gzip"] if gzip else []),
            f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failures:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-static-bench-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        path = asset(work / "build")
        stub = stack.enter_context(stub_upstream("chat-0", work / "build"))
        ports = {}
        for name, cached in (("not cached", False), ("cached", True)):
            ports[name] = free_port()
            stack.enter_context(nginx_server(conf(work / name.replace(" ", "-"), stub.port, ports[name], cached),
                                             work / name.replace(" ", "-"), ports[name]))
        size = (work / "build" / path.lstrip("/")).stat().st_size
        print(f"{path} ({size} bytes), {args.connections} connections, {args.seconds} s each, "
              f"{subprocess.run(['nginx', '-v'], capture_output=True, text=True).stderr.strip()}\n")
        print("| Accept-Encoding | not cached (req/s) | cached (req/s) | cached / not cached |")
        print("|-----------------|--------------------|----------------|---------------------|")
        for gzip in (False, True):
            rates = {name: wrk(port, path, args.seconds, args.connections, gzip) for name, port in ports.items()}
            print(f"| {'gzip' if gzip else 'none':15} | {rates['not cached']:18.0f} | {rates['cached']:14.0f} | "
                  f"x{rates['cached'] / rates['not cached']:<18.1f} |")


if __name__ == "__main__":
    main()
