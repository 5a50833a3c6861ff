"""Turn an evaluation of the program into real processes: one network namespace per node, one process per
container, started in the order of the plan's dependency graph, each waiting for its own healthcheck.

State lives in one directory: `runtime.json` (namespaces and process ids, written before anything is
created, so `down` works after a crash), `fleet.json` (what a client needs), logs, volumes.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from components.render.tls import CA_BUNDLE, KEY_FILE, POSTGRES_KEY_COPY, TLS_DIR
from components.render.watchdog import FAILURES_FILE, INIT_STAT, KILL_ALL_BUT_INIT
from plan.engine import BUCKET, CONTAINER, IMAGE, Evaluation, evaluate, read_stack_file
from tests import fleet_ca
from tests.realfleet import images, netns
from tests.realfleet.images import Launch, Rewrites

DEFAULT_CONFIG = Path(__file__).with_name("Pulumi.realfleet.yaml")
STACK = "realfleet"
CONTAINER_PGID = "CONTAINER_PGID"  # set for a healthcheck that kills its container's processes
HEALTH_POLL_S = 1.0  # the plan's healthchecks run every 10 s; polling faster only starts the fleet sooner


@dataclass
class Container:
    """One container the plan declares, as the runner runs it."""

    resource: str           # the Pulumi resource name (stable key), e.g. chat-node-a-1
    name: str               # the container name, resolvable on its node
    node: str
    kind: str               # the image's repository
    inputs: dict[str, Any]
    deps: list[str]         # resource names of the containers it waits for

    @property
    def one_shot(self) -> bool:
        return self.inputs.get("mustRun") is False

    def env(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.inputs.get("envs", []))

    def published(self) -> list[tuple[int, int]]:
        return [(int(p["external"]), int(p["internal"])) for p in self.inputs.get("ports", [])]


def containers_of(ev: Evaluation) -> list[Container]:
    by_urn = ev.by_urn()
    image_names = {r.state.get("imageId"): r.inputs["name"] for r in ev.of_type(IMAGE)}
    found = []
    for r in ev.of_type(CONTAINER):
        deps = [by_urn[u].name for u in r.dependencies if by_urn.get(u) and by_urn[u].type == CONTAINER]
        found.append(Container(r.name, r.inputs["name"], by_urn[r.provider_urn].name,
                               images.image_kind(image_names[r.inputs["image"]]), r.inputs, deps))
    return found


def node_addresses(config: dict[str, Any]) -> dict[str, str]:
    return {n: spec.get("address") or spec["host"] for n, spec in config["nodes"].items()}


class Runner:
    """The fleet of one state directory."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.runtime_path = state / "runtime.json"
        self.runtime: dict[str, Any] = (json.loads(self.runtime_path.read_text()) if self.runtime_path.exists()
                                        else {"namespaces": [], "nodes": {}, "processes": {}, "containers": {},
                                              "rewrites": [], "addresses": {}})
        self.rewrites = Rewrites(self.runtime["rewrites"])
        self._lock = threading.Lock()
        # The mock engine's placeholder PEMs (pulumi-tls does not run under it) -> real ones, made by `up`.
        self.pems: dict[str, str] = {}

    # -- state ---------------------------------------------------------------------------------
    def save(self) -> None:
        with self._lock:
            tmp = self.runtime_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.runtime, indent=1))
            os.chmod(tmp, 0o600)  # the processes' environments hold the fleet's passwords
            tmp.replace(self.runtime_path)

    def log_path(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    # -- up ------------------------------------------------------------------------------------
    def up(self, config_path: Path) -> dict[str, Any]:
        self.state.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o711)  # PostgreSQL (its own user) must reach its data dir inside
        (self.state / "logs").mkdir(exist_ok=True)
        config = read_stack_file(config_path)
        ev = evaluate(STACK, config)
        if ev.error:
            raise SystemExit(f"the stack config is rejected: {ev.error}")
        self.runtime["config"] = str(config_path.resolve())
        self.runtime["up_started_at"] = time.time()
        addresses = node_addresses(config)
        # Another fleet's bridge or namespaces: refuse before recording anything `down` would remove.
        netns.check_free(list(addresses))
        self.runtime["nodes"] = addresses
        self.runtime["namespaces"] = [netns.namespace(n) for n in addresses]
        self.runtime["bridge"] = netns.BRIDGE
        self.save()
        netns.create_bridge()
        containers = containers_of(ev)
        self.pems = real_pems(ev)
        self._assign_addresses(containers)
        for node, address in addresses.items():
            netns.create_node(node, address, self._hosts(node))
        self._start_in_order(containers, ev)
        self.runtime["up_done_at"] = time.time()
        self.save()
        fleet = self._describe(config, ev, containers)
        self._create_admins(fleet)
        (self.state / "fleet.json").write_text(json.dumps(fleet, indent=1))
        return fleet

    def apply(self, config_path: Path) -> dict[str, Any]:
        """`pulumi up` of an edit that adds containers or changes one-shot steps (e.g. one more replica):
        new containers start in order, changed one-shot steps run again."""
        config = read_stack_file(config_path)
        ev = evaluate(STACK, config)
        if ev.error:
            raise SystemExit(f"the stack config is rejected: {ev.error}")
        old = self.runtime["containers"]
        containers = containers_of(ev)
        todo = [c for c in containers if c.resource not in old
                or (c.one_shot and old[c.resource]["inputs"] != _json(c.inputs))]
        self._assign_addresses(containers)
        for node, address in self.runtime["nodes"].items():
            netns.write_hosts(node, address, self._hosts(node))
        done = {c.resource for c in containers if c not in todo}
        self._start_in_order(todo, ev, done=done)
        self.runtime["config"] = str(config_path.resolve())
        self.save()
        fleet = json.loads((self.state / "fleet.json").read_text())
        described = self._describe(config, ev, containers)
        for app, spec in described["apps"].items():
            spec["admin"] = fleet["apps"][app]["admin"]
        (self.state / "fleet.json").write_text(json.dumps(described, indent=1))
        return described

    def _assign_addresses(self, containers: list[Container]) -> None:
        addresses = self.runtime["addresses"]
        for c in containers:
            if c.name not in addresses:
                taken = sum(1 for a in addresses.values() if a["node"] == c.node)
                addresses[c.name] = {"node": c.node, "ip": f"127.0.1.{taken + 1}"}
        self.save()

    def _hosts(self, node: str) -> dict[str, str]:
        return {name: a["ip"] for name, a in self.runtime["addresses"].items() if a["node"] == node}

    def _start_in_order(self, containers: list[Container], ev: Evaluation, done: set[str] | None = None) -> None:
        """Waves of the dependency graph: everything whose dependencies are healthy starts together."""
        done = set(done or ())
        pending = {c.resource: c for c in containers}
        while pending:
            wave = [c for c in pending.values() if all(d in done or d not in pending for d in c.deps)]
            if not wave:
                raise RuntimeError(f"dependency cycle among {sorted(pending)}")
            errors: list[str] = []

            def bring_up(c: Container) -> None:
                try:
                    self.start(c, ev)
                except Exception as e:  # noqa: BLE001 - reported with the container's name below
                    errors.append(f"{c.name}: {e}")
            threads = [threading.Thread(target=bring_up, args=(c,)) for c in wave]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise RuntimeError("; ".join(errors))
            for c in wave:
                done.add(c.resource)
                del pending[c.resource]

    # -- one container -------------------------------------------------------------------------
    def start(self, c: Container, ev: Evaluation | None = None) -> None:
        launch = self._launch(c)
        ns = netns.namespace(c.node)
        for ext, internal in c.published():
            if not self.runtime["containers"].get(c.resource, {}).get("published"):
                netns.publish(ns, self.runtime["nodes"][c.node], ext, self.runtime["addresses"][c.name]["ip"],
                              internal)
        record = {"name": c.name, "node": c.node, "namespace": ns, "kind": c.kind, "inputs": _json(c.inputs),
                  "launch": asdict(launch) | {"cwd": str(launch.cwd)}, "health": self._health(c),
                  "one_shot": c.one_shot, "published": True, "log": str(self.log_path(c.name))}
        self.runtime["containers"][c.resource] = record
        self.save()
        self.run_process(c.resource)
        if ev is not None and c.kind == "minio/minio":
            self._create_buckets(ev)

    def spawn(self, resource: str) -> subprocess.Popen[bytes]:
        """Start a recorded container's process (its own process group) and return at once."""
        record = self.runtime["containers"][resource]
        launch = record["launch"]
        argv = netns.in_ns(record["namespace"], launch["argv"])
        if launch["user"]:
            argv = netns.in_ns(record["namespace"], ["runuser", "-u", launch["user"], "--", *launch["argv"]])
        log = open(record["log"], "ab")
        record["started_at"] = time.time()
        proc = subprocess.Popen(argv, env=launch["env"], cwd=launch["cwd"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.runtime["processes"][resource] = proc.pid
        self.save()
        return proc

    def run_process(self, resource: str) -> None:
        """(Re)start a recorded container and wait until it is healthy (or, for a one-shot step, done)."""
        record = self.runtime["containers"][resource]
        proc = self.spawn(resource)
        timeout = float(record["inputs"].get("waitTimeout") or 180)
        deadline = time.monotonic() + timeout
        if record["one_shot"]:
            code = proc.wait(timeout=timeout)
            if code != 0:
                raise RuntimeError(f"exited {code}: {_tail(record['log'])}")
        else:
            while not self.healthy(resource):
                if proc.poll() is not None:
                    raise RuntimeError(f"exited {proc.returncode} before it was healthy: {_tail(record['log'])}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not healthy after {timeout:.0f} s: {_tail(record['log'])}")
                time.sleep(HEALTH_POLL_S)
        record["healthy_at"] = time.time()
        self.save()

    def healthy(self, resource: str) -> bool:
        record = self.runtime["containers"][resource]
        health = record["health"]
        if health is None:
            return True
        env = health["env"]
        if CONTAINER_PGID in health["test"]:
            if (pid := self.runtime["processes"].get(resource)) is None:
                return False
            env = env | {CONTAINER_PGID: str(pid)}
        try:
            result = subprocess.run(netns.in_ns(record["namespace"], ["sh", "-c", health["test"]]),
                                    env=env, cwd=health.get("cwd"), capture_output=True,
                                    timeout=health["timeout"])
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0

    def stop(self, resource: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        pid = self.runtime["processes"].pop(resource, None)
        self.save()
        if pid is not None:
            _kill_group(pid, sig, timeout)

    def _health(self, c: Container) -> dict[str, Any] | None:
        check = c.inputs.get("healthcheck")
        if not check:
            return None
        kind, test = check["tests"][0], check["tests"][1]
        env = images.base_env(self._dir(c)) | c.env()
        if c.kind.startswith("openwebui-fleet-backup") and check["tests"][1:] == ["python", "-m", "fleet_backup",
                                                                                  "health"]:
            env |= self._backup_env(c)
            test = shlex.join([sys.executable, "-m", "fleet_backup", "health"])
            kind = "CMD-SHELL"
            self.rewrites.add(c.name, f"healthcheck: the image's python -> {sys.executable}")
        if kind != "CMD-SHELL":
            raise ValueError(f"{c.name}: healthcheck kind {kind} is not run here")
        ip = self.runtime["addresses"][c.name]["ip"]
        tls = self._tls_paths(c)
        if TLS_DIR in test:
            test = images.rewrite_paths(test, tls)
            self.rewrites.add(c.name, f"healthcheck: {TLS_DIR} -> {tls[TLS_DIR]}")
        if c.kind == "postgres":
            env["PGHOST"] = str(self._dir(c) / "run")
            self.rewrites.add(c.name, f"healthcheck: the image's socket dir /var/run/postgresql -> {env['PGHOST']}")
        elif c.kind == "minio/minio":
            test = "curl --silent --output /dev/null http://127.0.0.1:9000/"
            if "https://" in check["tests"][1]:
                test = f"curl --silent --output /dev/null --cacert {tls[TLS_DIR]}/ca.crt https://localhost:9000/"
            self.rewrites.add(c.name, f"healthcheck `mc ready local` (no mc here) -> `{test}`")
        elif "localhost" in test and c.kind.endswith("open-webui"):
            test = test.replace("localhost", ip)
            self.rewrites.add(c.name, f"healthcheck: the container's localhost -> its address {ip}")
        if KILL_ALL_BUT_INIT in test:
            # No container here: "every process but the init" is the replica's process group.
            test = test.replace(KILL_ALL_BUT_INIT, f'kill -KILL -"${CONTAINER_PGID}"')
            test = test.replace(INIT_STAT, f'/proc/"${CONTAINER_PGID}"/stat')
            failures = self._dir(c) / "health-failures"
            test = test.replace(FAILURES_FILE, str(failures))
            self.rewrites.add(c.name, f"healthcheck: `{KILL_ALL_BUT_INIT}` -> a kill of its process group, "
                                      f"{INIT_STAT} -> its leader's, {FAILURES_FILE} -> {failures}")
        if re.search(r"kill\s+(-\w+\s+)*-1\b", test):   # would reach every process on this machine
            raise ValueError(f"{c.name}: healthcheck `{test}` kills all processes; not run here")
        timeout = _seconds(check.get("timeout", "5s"))
        return {"test": test, "env": env, "timeout": timeout, "cwd": str(images.REPO)}

    def _backup_env(self, c: Container) -> dict[str, str]:
        """The backup image's ENV and the job's default state file, moved into its work volume."""
        work = self._volume(c, "/var/lib/fleet-backup")
        return {"PYTHONUNBUFFERED": "1", "BACKUP_LOCK_FILE": str(work / "backup.lock"),
                "BACKUP_WORK_DIR": str(work), "BACKUP_STATE_FILE": str(work / "state.json")}

    def _dir(self, c: Container) -> Path:
        path = self.state / "containers" / c.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _volume(self, c: Container, container_path: str) -> Path:
        for v in c.inputs.get("volumes", []):
            if v["containerPath"] == container_path:
                path = self.state / "volumes" / v["volumeName"]
                path.mkdir(parents=True, exist_ok=True)
                return path
        raise KeyError(f"{c.name}: no volume at {container_path}")

    def _node_nginx_paths(self, c: Container) -> dict[str, str]:
        """Paths inside the nginx image, shared by the node's nginx containers."""
        base = self.state / "nodes" / c.node / "nginx"
        for d in ("run", *(f"cache/{t}" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))):
            (base / d).mkdir(parents=True, exist_ok=True)
            os.chmod(base / d, 0o777)  # workers run unprivileged
        paths = {"/var/run/nginx.pid": str(base / "run" / "nginx.pid"), "/var/cache/nginx": str(base / "cache"),
                 "/staging": str(self._dir(c) / "staging")}
        for v in c.inputs.get("volumes", []):
            if v.get("volumeName"):
                paths[v["containerPath"]] = str(self._volume(c, v["containerPath"]))
        return paths

    def _tls_paths(self, c: Container) -> dict[str, str]:
        """The fleet's TLS files and the replicas' CA bundle (in the container's /tmp) -> its state dir."""
        return {TLS_DIR: str(self._dir(c) / "tls"), CA_BUNDLE: str(self._dir(c) / "ca-bundle.pem")}

    def _write_uploads(self, c: Container, paths: dict[str, str]) -> None:
        paths = self._tls_paths(c) | paths
        for upload in c.inputs.get("uploads", []):
            target = Path(images.rewrite_paths(upload["file"], paths))
            if not target.is_relative_to(self.state):
                raise ValueError(f"{c.name}: upload {upload['file']} would land outside the state dir")
            target.parent.mkdir(parents=True, exist_ok=True)
            content = images.rewrite_paths(upload["content"], paths) if c.kind == "nginx" else upload["content"]
            real = self.pems.get(content)
            target.write_text(real or content)
            if upload["file"].startswith(TLS_DIR):
                os.chmod(target, 0o600 if "PRIVATE KEY" in (real or "") else 0o644)
            self.rewrites.add(c.name, f"upload {upload['file']} -> {target}"
                              + (" (image paths inside rewritten too)" if content != upload["content"] else "")
                              + (" (a real PEM for the mock engine's placeholder)" if real else ""))

    def _tls_env(self, c: Container, env: dict[str, str]) -> dict[str, str]:
        """TLS file paths in the plan's env values (sslrootcert, ssl_ca_certs, SSL_CERT_FILE...) moved."""
        paths = self._tls_paths(c)
        moved = {k: images.rewrite_paths(v, paths) for k, v in env.items()}
        changed = sorted(k for k in env if moved[k] != env[k])
        if changed:
            self.rewrites.add(c.name, f"env {', '.join(changed)}: {TLS_DIR} -> {paths[TLS_DIR]}, "
                                      f"{CA_BUNDLE} -> {paths[CA_BUNDLE]}")
        return moved

    def _launch(self, c: Container) -> Launch:
        home = self._dir(c)
        env = self._tls_env(c, images.base_env(home) | c.env())
        command = c.inputs.get("command")
        entry = c.inputs.get("entrypoints")
        ip = self.runtime["addresses"][c.name]["ip"]
        rw = self.rewrites
        if c.kind == "postgres" and command is not None and command[:2] == ["sh", "-c"] \
                and "docker-entrypoint.sh" in command[2]:
            command = self._postgres_tls_wrapper(c, command)
        if c.kind == "postgres" and (command is None or command[0] == "postgres"):
            run = home / "run"
            run.mkdir(exist_ok=True)
            data = self._volume(c, "/var/lib/postgresql/data")
            for p in (home, run, data):
                os.chown(p, _uid("postgres"), _gid("postgres"))
            os.chmod(data, 0o700)
            args = [images.rewrite_paths(a, self._tls_paths(c)) for a in (command or [])[1:]]
            return Launch(images.postgres_server(env, data, run, rw, c.name, args), env, home, user="postgres")
        if c.kind == "postgres":
            paths = {"/bootstrap": str(home / "bootstrap")}
            self._write_uploads(c, paths)
            return Launch([images.rewrite_paths(a, paths) for a in command], env, home)
        if c.kind == "redis":
            paths = {v["containerPath"]: str(self._volume(c, v["containerPath"])) for v in c.inputs.get("volumes", [])}
            if entry != ["sh", "-c"]:
                self._write_uploads(c, {})
            if entry == ["sh", "-c"]:  # the ACL users step: its uploads, then the script
                paths |= {str(Path(u["file"]).parent): str(home / Path(u["file"]).parent.name)
                          for u in c.inputs.get("uploads", [])}
                self._write_uploads(c, paths)
                argv = [*entry, *(images.rewrite_paths(a, paths) for a in command)]
            else:
                data = paths.pop("/data")
                rw.add(c.name, f"working dir /data (the image's WORKDIR, its volume) -> {data}")
                home, argv = Path(data), [images.rewrite_paths(a, self._tls_paths(c) | paths) for a in command]
            if paths:
                rw.add(c.name, "command: image paths " + ", ".join(f"{k} -> {v}" for k, v in paths.items()))
            return Launch(argv, env, home)
        if c.kind == "qdrant/qdrant":
            self._write_uploads(c, {})
            return Launch(images.qdrant_stub(6333, rw, c.name), env, images.REPO)
        if c.kind == "minio/minio":
            self._write_uploads(c, {})
            certs = None
            if command is not None and command[:2] == ["server", "--certs-dir"]:
                certs, command = Path(images.rewrite_paths(command[2], self._tls_paths(c))), ["server", *command[3:]]
            if command != ["server", "/data"]:
                raise ValueError(f"{c.name}: unexpected MinIO command {command!r}")
            return Launch(images.minio_server(9000, rw, c.name, certs), env, home)
        if c.kind == "minio/mc":
            # Its uploads (the policies the stand-in skips, the CA with tls) into its own dir.
            self._write_uploads(c, {str(Path(u["file"]).parent): str(home / Path(u["file"]).parent.name)
                                    for u in c.inputs.get("uploads", [])})
            return Launch(images.mc_setup(command, rw, c.name), env, home)
        if c.kind.endswith("open-webui/open-webui"):
            data = self._volume(c, "/app/backend/data")
            env |= {"DATA_DIR": str(data), "OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1"}
            rw.add(c.name, f"DATA_DIR /app/backend/data (its volume) -> {data}; added OFFLINE_MODE=true, "
                           "HF_HUB_OFFLINE=1 (no network here)")
            rw.add(c.name, f"the image's `start.sh` (0.0.0.0:8080 in its own network) -> "
                           f"`open-webui serve --host {ip} --port 8080` (its address on the node)")
            exe = images.openwebui_venv() / "bin" / "open-webui"
            serve = [str(exe), "serve", "--host", ip, "--port", "8080"]
            if command is None:
                return Launch(serve, env, home)
            # sharedServices.tls: the plan's own command (it writes the CA bundle), then the server.
            self._write_uploads(c, {})
            env["PATH"] = f"{exe.parent}:{env['PATH']}"
            shell, flag, script = command
            if not script.endswith("exec bash start.sh"):
                raise ValueError(f"{c.name}: unexpected Open WebUI command {command!r}")
            script = images.rewrite_paths(script, self._tls_paths(c)).replace("exec bash start.sh",
                                                                             f"exec {shlex.join(serve)}")
            rw.add(c.name, f"command: TLS paths moved, `bash start.sh` -> `{shlex.join(serve)}`; "
                           f"{exe.parent} first in PATH (the image's python)")
            return Launch([shell, flag, script], env, home)
        if c.kind == "nginx":
            paths = self._node_nginx_paths(c)
            self._write_uploads(c, paths)
            script = images.rewrite_paths(command[0], paths)
            if script != command[0]:
                rw.add(c.name, "command: image paths " + ", ".join(
                    f"{k} -> {v}" for k, v in paths.items() if k in command[0]))
            return Launch([*(entry or []), script], env, home)
        if c.kind.startswith("openwebui-fleet-backup"):
            work = self._volume(c, "/var/lib/fleet-backup")
            env |= self._backup_env(c)
            rw.add(c.name, f"image ENV BACKUP_WORK_DIR/BACKUP_LOCK_FILE and the default BACKUP_STATE_FILE "
                           f"/var/lib/fleet-backup -> {work}")
            return Launch([sys.executable, "-m", "fleet_backup", *(command or [])], env, images.REPO)
        raise ValueError(f"{c.name}: no way to run image {c.kind} here")

    def _postgres_tls_wrapper(self, c: Container, command: list[str]) -> list[str]:
        """The TLS command `sh -c 'install … server.key <copy> && exec docker-entrypoint.sh "$@"' sh postgres …`:
        its uploads written, the key copy made as it says (owner postgres, 0600), then the image's
        entrypoint with the arguments after `sh`."""
        script, args = command[2], command[4:]
        install = f"install -m 0600 -o postgres -g postgres {KEY_FILE} {POSTGRES_KEY_COPY} && "
        if not script.startswith(install) or command[3] != "sh" or args[:1] != ["postgres"]:
            raise ValueError(f"{c.name}: unexpected postgres command {command!r}")
        home = self._dir(c)
        self._write_uploads(c, {})
        copy = home / "server.key"
        subprocess.run(["install", "-m", "0600", "-o", "postgres", "-g", "postgres",
                        images.rewrite_paths(KEY_FILE, self._tls_paths(c)), str(copy)], check=True)
        self.rewrites.add(c.name, f"command: `install … {POSTGRES_KEY_COPY}` run by the runner -> {copy}; "
                                  "then the entrypoint with the same arguments")
        return [images.rewrite_paths(a, {POSTGRES_KEY_COPY: str(copy)}) for a in args]

    def _create_buckets(self, ev: Evaluation) -> None:
        """What the aws provider does for the backup bucket (versioning on, as declared), against moto."""
        import boto3
        backup = ev.config.get("backup") or {}
        for b in ev.of_type(BUCKET):
            name = b.inputs.get("bucket") or b.state.get("bucket")
            s3 = boto3.client("s3", endpoint_url=backup["endpoint"], region_name=backup.get("region", "us-east-1"),
                              aws_access_key_id="realfleet", aws_secret_access_key="realfleet")
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                s3.create_bucket(Bucket=name)
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            self.rewrites.add(f"bucket {name}", f"created in moto at {backup['endpoint']} (the aws provider's job)")

    # -- fleet.json ----------------------------------------------------------------------------
    def _describe(self, config: dict[str, Any], ev: Evaluation, containers: list[Container]) -> dict[str, Any]:
        addresses = self.runtime["nodes"]
        lb = config["loadBalancer"]
        by_resource = {c.resource: c for c in containers}
        apps = {}
        for app, spec in config["apps"].items():
            reps = []
            for c in containers:
                labels = {x["label"]: x["value"] for x in c.inputs.get("labels", [])}
                if labels.get("openwebui-fleet.app") != app:
                    continue
                ext, _ = c.published()[0]
                reps.append({"resource": c.resource, "container": c.name, "node": c.node,
                             "address": addresses[c.node], "port": ext,
                             "migrates": labels["openwebui-fleet.migrates"] == "true"})
            apps[app] = {"hostname": spec["hostname"], "url": f"http://{spec['hostname']}",
                         "replicas": reps, "admin": None}
        return {"state": str(self.state), "config": self.runtime["config"],
                "nodes": {n: {"namespace": netns.namespace(n), "address": a} for n, a in addresses.items()},
                "lb": {"node": lb["node"], "address": addresses[lb["node"]],
                       "ports": {"http": int(lb.get("httpPort", 80))}},
                "apps": apps,
                "containers": {r: {k: v for k, v in rec.items() if k in ("name", "node", "namespace", "kind", "log",
                                                                           "started_at", "healthy_at")}
                               | {"container_address": self.runtime["addresses"][rec["name"]]["ip"]}
                               for r, rec in self.runtime["containers"].items() if r in by_resource},
                "rewrites": self.rewrites.lines,
                "up_seconds": self.runtime.get("up_done_at", 0) - self.runtime.get("up_started_at", 0)}

    def _create_admins(self, fleet: dict[str, Any]) -> None:
        """The first sign-up of each app, through the LB: Open WebUI makes it the admin."""
        lb = fleet["lb"]
        for app, spec in fleet["apps"].items():
            admin = {"name": f"{app} admin", "email": f"admin@{spec['hostname']}",
                     "password": secrets.token_urlsafe(18)}
            r = requests.post(f"http://{lb['address']}:{lb['ports']['http']}/api/v1/auths/signup",
                              json=admin, headers={"Host": spec["hostname"]}, timeout=60)
            r.raise_for_status()
            spec["admin"] = admin | {"role": r.json()["role"], "token": r.json()["token"]}


class RestartPolicy:
    """What dockerd does for `restart: unless-stopped` containers with a healthcheck, for `resources` while
    in use: runs each one's healthcheck every `interval` s (the plan's is 10 s; faster only shortens the
    wait) and starts again a container whose processes have all exited (dockerd's backoff left out)."""

    def __init__(self, runner: Runner, resources: list[str], interval: float = 2.0) -> None:
        self.runner, self.resources, self.interval = runner, resources, interval
        self.restarts: dict[str, int] = dict.fromkeys(resources, 0)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, args=(r,), daemon=True) for r in resources]

    def __enter__(self) -> RestartPolicy:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _watch(self, resource: str) -> None:
        while not self._stop.wait(self.interval):
            pid = self.runner.runtime["processes"].get(resource)
            if pid is not None:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)   # reap it if it is this process's child
            if pid is None or not _group_alive(pid):
                self.runner.spawn(resource)
                self.restarts[resource] += 1
            else:
                self.runner.healthy(resource)


def real_pems(ev: Evaluation) -> dict[str, str]:
    """A real CA and a certificate and key per LocallySignedCert, with the names of its CertRequest, keyed by
    the placeholder PEM the mock engine gave each (so an upload of one gets the other)."""
    cas = ev.of_type("tls:index/selfSignedCert:SelfSignedCert")
    if not cas:
        return {}
    ca = fleet_ca.make_ca(cas[0].inputs["subject"]["commonName"])
    pems = {cas[0].state["certPem"]: fleet_ca.ca_pem(ca).decode()}
    requests_by_pem = {r.state["certRequestPem"]: r.inputs for r in ev.of_type("tls:index/certRequest:CertRequest")}
    for signed in ev.of_type("tls:index/locallySignedCert:LocallySignedCert"):
        request = requests_by_pem[signed.inputs["certRequestPem"]]
        cert, key = fleet_ca.server_cert(ca, request["subject"]["commonName"], request["dnsNames"],
                                         request["ipAddresses"])
        pems[signed.state["certPem"]] = cert.decode()
        pems[request["privateKeyPem"]] = key.decode()
    return pems


def down(state: Path) -> None:
    """Stop every process and remove every namespace the state directory records; safe to repeat."""
    runtime_path = state / "runtime.json"
    if not runtime_path.exists():
        return
    runtime = json.loads(runtime_path.read_text())
    for pid in runtime.get("processes", {}).values():
        _kill_group(pid, signal.SIGTERM, 30)
    runtime["processes"] = {}
    for node in runtime.get("nodes", {}):
        netns.delete_node(node)
    if runtime.get("bridge"):
        netns.delete_bridge()
    runtime_path.write_text(json.dumps(runtime, indent=1))


def _kill_group(pid: int, sig: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # A zombie leader still counts until reaped; members are what matter.
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (proc / "stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    return True
    return False


def _tail(path: str, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    return ""


def _seconds(duration: str) -> float:
    """A Docker duration ("5s", "1m", "1m30s") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _uid(user: str) -> int:
    import pwd
    return pwd.getpwnam(user).pw_uid


def _gid(user: str) -> int:
    import pwd
    return pwd.getpwnam(user).pw_gid
