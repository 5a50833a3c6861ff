"""Command line: python -m fleet_backup {backup,restore,list,schedule}."""
from __future__ import annotations

import argparse
import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

import fleet_backup
from fleet_backup import alerts, errors, logs
from fleet_backup.errors import JobError
from fleet_backup.jobs import bytes_per_app, list_backups, run_backup, run_restore, run_verify
from fleet_backup.schedule import run_schedule, validate_cron
from fleet_backup.settings import Settings, encryption_key, signing_key
from fleet_backup.status import State, health, render, report
from fleet_backup.store import BackupStore

log = logging.getLogger("fleet_backup")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fleet_backup", description=fleet_backup.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    parsers = {}
    for name, text in (("backup", "dump databases, roles, Qdrant collections and the apps' files to S3"),
                       ("list", "completed backups, newest first: id, finished at, apps, objects, bytes")):
        parsers[name] = sub.add_parser(name, help=text, description=text[:1].upper() + text[1:] + ".")
    ls = parsers["list"]
    r = sub.add_parser("restore", help="verify, then restore databases, Qdrant collections and files")
    r.add_argument("--backup", default="latest", help="backup id from `list`, or latest (default)")
    r.add_argument("--app", action="append", dest="apps", metavar="NAME", help="restore only this app (repeat)")
    r.add_argument("--skip-qdrant", action="store_true", help="do not restore Qdrant collections")
    r.add_argument("--skip-files", action="store_true", help="do not restore the apps' files")
    r.add_argument("--prune-files", action="store_true",
                   help="also delete files under an app's prefix that are not in the backup")
    v = sub.add_parser("verify", help="restore drill: restore into scratch databases, compare row counts, "
                                      "check every checksum, record the result in the bucket")
    v.add_argument("--backup", default="latest", help="backup id from `list`, or latest (default)")
    for command in (ls, r, v):
        command.add_argument("--from-copy", action="store_true",
                             help="use the second bucket (BACKUP_COPY_S3_BUCKET) instead of the backup bucket")
    st = sub.add_parser("status", help="last success, last failure, next runs, last drill, health")
    st.add_argument("--json", action="store_true", help="as one JSON object")
    sub.add_parser("health", help=f"exit 0 if healthy, {errors.UNHEALTHY} if not (the container's healthcheck)")
    s = sub.add_parser("schedule", help="run backup (and the drill) at every cron time (UTC), forever")
    s.add_argument("--cron", required=True, help='5-field cron expression, e.g. "0 2 * * *"')
    s.add_argument("--verify-cron", help='when to run `verify` on the latest backup, e.g. "0 5 * * 0"')
    return p


def _run(settings: Settings, command: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one command; returns what the state file records about it."""
    from_copy = getattr(args, "from_copy", False)
    if from_copy and settings.copy_to is None:
        raise JobError(errors.CONFIG, "--from-copy: BACKUP_COPY_S3_BUCKET is not set")
    store = BackupStore(settings, signing_key(), encryption_key(), copy=from_copy)
    if command == "backup":
        manifest = run_backup(settings, store)
        return {"runId": manifest["id"], "bytesPerApp": bytes_per_app(manifest),
                "objects": len(manifest["objects"]), "bytes": sum(o["size"] for o in manifest["objects"])}
    if command == "verify":
        return {"runId": run_verify(settings, store, args.backup)["runId"]}
    elif command == "list":
        for m in list_backups(store):
            size = sum(o["size"] for o in m["objects"])
            print(f"{m['id']}\t{m['finishedAt']}\t{','.join(m['apps'])}\t{len(m['objects'])} objects\t{size} bytes")
    elif command == "restore":
        run_restore(settings, store, args.backup, args.apps, args.skip_qdrant, args.skip_files, args.prune_files)
    return {}


def _attempt(settings: Settings, command: str, args: argparse.Namespace) -> tuple[int, str | None, dict[str, Any]]:
    """(exit code, reason, details) of one command; every failure becomes one log line."""
    try:
        return errors.OK, None, _run(settings, command, args)
    except JobError as e:
        reason, code = str(e), e.code
    except NoCredentialsError:
        reason = ("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and FILES_AWS_* for "
                  "FILES_S3_BUCKET); the fleet sets them from backupAccessKeyId/backupSecretAccessKey")
        code = errors.CONFIG
    except (BotoCoreError, ClientError) as e:
        reason = f"S3 error: {e}"
        code = errors.UPLOAD_FAILED if command == "backup" else errors.UNEXPECTED
    except Exception as e:  # noqa: BLE001 - last resort: one line, no traceback with env values
        reason, code = f"unexpected {type(e).__name__}: {e}", errors.UNEXPECTED
    log.error("%s failed: %s", command, reason)
    return code, logs.redact(reason, logs.secret_values(os.environ)), {}


def guarded(settings: Settings, command: str, args: argparse.Namespace) -> int:
    """Run one command, record its outcome in the state file, return its exit code."""
    started = datetime.now(UTC)
    code, reason, details = _attempt(settings, command, args)
    if command in ("backup", "verify"):
        state = State(settings.state_file)
        previous = state.read().get("lastBackup" if command == "backup" else "lastVerify")
        recorded = state.record(command, code, reason, started, details)
        event = alerts.event_for(command, code, previous)
        webhook = os.environ.get("BACKUP_WEBHOOK_URL")
        if event and webhook:
            run = recorded["lastBackup" if command == "backup" else "lastVerify"]
            alerts.send(webhook, alerts.payload(event, settings.stack, run))
    return code


def _status(settings: Settings, command: str, as_json: bool) -> int:
    state = State(settings.state_file).read()
    if command == "health":
        healthy, why = health(state)
        print("healthy" if healthy else f"unhealthy: {why}")
        return errors.OK if healthy else errors.UNHEALTHY
    out = report(state)
    print(json.dumps(out, indent=2, sort_keys=True) if as_json else render(out))
    return errors.OK


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        signing_key()
        encryption_key()
        if args.command == "schedule":
            validate_cron(args.cron)
            if args.verify_cron:
                validate_cron(args.verify_cron)
    except (JobError, ValueError) as e:
        log.error("configuration: %s", e)
        return errors.CONFIG
    if args.command in ("status", "health"):
        return _status(settings, args.command, getattr(args, "json", False))
    if args.command == "schedule":
        state = State(settings.state_file)
        state.update(schedule=args.cron, verifySchedule=args.verify_cron,
                     scheduleStartedAt=datetime.now(UTC).isoformat())
        if settings.metrics_port:
            from fleet_backup import metrics  # only the long-running process serves them
            metrics.serve(state, settings.metrics_address, settings.metrics_port)
            log.info("schedule: Prometheus metrics on %s:%d/metrics", settings.metrics_address,
                     settings.metrics_port)
        verify_args = argparse.Namespace(command="verify", backup="latest")
        run_schedule(args.cron, lambda: guarded(settings, "backup", argparse.Namespace(command="backup")),
                     verify=(args.verify_cron, lambda: guarded(settings, "verify", verify_args))
                     if args.verify_cron else None)
        return errors.OK
    return guarded(settings, args.command, args)
