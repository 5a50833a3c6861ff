"""The scripts that put a config live, run for real: nginx -t gates every swap, reloads are graceful."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from components.config import LoadBalancerSpec
from components.load_balancer import edge_settings
from components.render.nginx import NginxSettings, Site, Upstream, render_nginx_conf
from components.render.nginx_runtime import (install_and_reload_script, install_config_script,
                                             reload_loop_script)
from lbclient import request
from realservices import free_port, nginx_server, require_binary, running, stub_upstream, wait_until

BROKEN = "events {}\nhttp { server { listen 1; unknown_directive on; } }\n"


def conf(prefix: Path, port: int, upstream_ports: list[int]) -> str:
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    settings = NginxSettings(http_port=port, https_port=free_port(), tls=None, client_max_body_size_mb=1,
                             health_path="/lb-health", proxy_read_timeout_s=60, api_read_timeout_s=60, max_fails=1,
                             fail_timeout_s=5, keepalive=4, pid_path=str(prefix / "nginx.pid"),
                             error_log=str(prefix / "error.log"), access_log=str(prefix / "access.log"),
                             temp_dir=str(prefix / "temp"), edge=edge_settings(LoadBalancerSpec(node="lb")))
    site = Site("chat", "chat.test", tuple(Upstream("127.0.0.1", p) for p in upstream_ports))
    return render_nginx_conf(settings, [site]).replace(f"listen {port};", f"listen 127.0.0.1:{port};")


def workers(master: int) -> set[int]:
    return {int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def nginx_command(prefix: Path) -> str:
    return f"{require_binary('nginx')} -p {prefix} -e stderr"


def test_install_script_swaps_in_a_valid_config_and_refuses_a_broken_one(tmp_path: Path) -> None:
    live, staged = tmp_path / "live.conf", tmp_path / "staged.conf"
    staged.write_text(conf(tmp_path, free_port(), [free_port()]))
    script = install_config_script(str(staged), str(live), nginx=nginx_command(tmp_path))
    assert subprocess.run(["sh", "-c", script], capture_output=True).returncode == 0
    assert live.read_text() == staged.read_text()
    working = live.read_text()
    staged.write_text(BROKEN)
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert result.returncode != 0 and "unknown_directive" in result.stderr
    assert live.read_text() == working, "a config that fails nginx -t never replaces the working one"


def test_reload_loop_applies_a_new_config_without_restarting_and_ignores_a_broken_one(tmp_path: Path) -> None:
    port = free_port()
    live = tmp_path / "nginx.conf"
    with stub_upstream("old") as old, stub_upstream("new") as new:
        live.write_text(conf(tmp_path, port, [old.port]))
        script = reload_loop_script(str(live), nginx=nginx_command(tmp_path), interval_s=1)
        with running(["sh", "-c", script], port) as loop:
            master = int((tmp_path / "nginx.pid").read_text())
            assert request(port, "chat.test", "/").headers["x-upstream"] == "old"
            old_workers = workers(master)
            live.write_text(conf(tmp_path, port, [new.port]))
            # Reloaded once the old workers have exited (until then both generations accept).
            wait_until(lambda: not workers(master) & old_workers, 20, "the reload loop to apply the file")
            assert request(port, "chat.test", "/").headers["x-upstream"] == "new"
            assert int((tmp_path / "nginx.pid").read_text()) == master, "reloaded, not restarted"
            live.write_text(BROKEN)
            # The loop checks every second; wait until it has seen and rejected the broken file.
            os.set_blocking(loop.stderr.fileno(), False)
            said = bytearray()
            wait_until(lambda: said.extend(loop.stderr.read() or b"") or b"rejected" in said, 20,
                       "the loop to reject the file")
            assert request(port, "chat.test", "/").headers["x-upstream"] == "new"
            assert int((tmp_path / "nginx.pid").read_text()) == master


def test_native_script_takes_config_on_stdin_then_validates_installs_and_reloads(tmp_path: Path) -> None:
    port = free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    with stub_upstream("before") as before, stub_upstream("after") as after:
        with nginx_server(conf(prefix, port, [before.port]), prefix, port) as nginx:
            assert request(port, "chat.test", "/").headers["x-upstream"] == "before"
            script = install_and_reload_script(str(prefix / "nginx.conf"), sudo=False, nginx=nginx_command(prefix))
            old_workers = nginx.worker_pids()
            result = subprocess.run(["sh", "-c", script], input=conf(prefix, port, [after.port]),
                                    capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
            # Old workers finish what they have, then exit; until then both generations accept.
            wait_until(lambda: not nginx.worker_pids() & old_workers, 20, "the old workers to exit")
            assert request(port, "chat.test", "/").headers["x-upstream"] == "after"
            refused = subprocess.run(["sh", "-c", script], input=BROKEN, capture_output=True, text=True)
            assert refused.returncode != 0
            assert request(port, "chat.test", "/").headers["x-upstream"] == "after"
            assert "unknown_directive" not in (prefix / "nginx.conf").read_text()


def test_install_script_puts_staged_tls_files_live_and_a_bad_certificate_stops_the_config(tmp_path: Path) -> None:
    require_binary("openssl")
    staged_dir, live_dir = tmp_path / "staging", tmp_path / "live"
    staged_dir.mkdir()
    cert, key = staged_dir / "fullchain.pem", staged_dir / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=chat.test"], check=True, capture_output=True)
    live_cert, live_key = live_dir / "tls" / "fullchain.pem", live_dir / "tls" / "privkey.pem"
    port = free_port()
    text = conf(tmp_path, port, [free_port()]).replace("http {", "http {\n    ssl_certificate " + str(live_cert) + ";\n    ssl_certificate_key "
                        + str(live_key) + ";\n    server { listen 127.0.0.1:" + str(free_port()) + " ssl; }", 1)
    staged_conf, live_conf = staged_dir / "nginx.conf", live_dir / "nginx.conf"
    staged_conf.write_text(text)
    script = install_config_script(str(staged_conf), str(live_conf), nginx=nginx_command(tmp_path),
                                   files=[(str(cert), str(live_cert)), (str(key), str(live_key))])
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert live_key.read_bytes() == key.read_bytes() and oct(live_key.stat().st_mode)[-3:] == "600"
    assert live_conf.read_text() == text
    live_conf.write_text("# the working config\n")
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    refused = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert refused.returncode != 0 and "fullchain.pem" in refused.stderr
    assert live_conf.read_text() == "# the working config\n", "nginx -t failed: the config stays"


def test_install_script_puts_a_placeholder_certificate_only_where_there_is_none(tmp_path: Path) -> None:
    staged, live = tmp_path / "staging", tmp_path / "live"
    staged.mkdir()
    (staged / "cert.pem").write_text("placeholder cert\n")
    (staged / "key.pem").write_text("placeholder key\n")
    (staged / "nginx.conf").write_text(conf(tmp_path, free_port(), [free_port()]))
    pairs = [(str(staged / "cert.pem"), str(live / "acme/fullchain.pem")),
             (str(staged / "key.pem"), str(live / "acme/privkey.pem"))]
    script = install_config_script(str(staged / "nginx.conf"), str(live / "nginx.conf"),
                                   nginx=nginx_command(tmp_path), placeholders=pairs)
    first = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    placed = (live / "acme/fullchain.pem").read_text(), (live / "acme/privkey.pem").read_text()
    (live / "acme/fullchain.pem").write_text("issued cert\n")  # what the ACME client put there since
    (live / "acme/privkey.pem").write_text("issued key\n")
    second = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert placed == ("placeholder cert\n", "placeholder key\n")
    assert (live / "acme/fullchain.pem").read_text() == "issued cert\n"
    assert (live / "acme/privkey.pem").read_text() == "issued key\n"
