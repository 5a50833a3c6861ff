"""Command line: python -m fleet_backup {backup,restore,list,schedule}."""
from __future__ import annotations

import argparse
import logging
import sys

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

import fleet_backup
from fleet_backup import errors
from fleet_backup.errors import JobError
from fleet_backup.jobs import list_backups, run_backup, run_restore
from fleet_backup.schedule import run_schedule, validate_cron
from fleet_backup.settings import Settings
from fleet_backup.store import BackupStore

log = logging.getLogger("fleet_backup")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fleet_backup", description=fleet_backup.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (("backup", "dump databases, roles, Qdrant collections and the apps' files to S3"),
                       ("list", "completed backups, newest first: id, finished at, apps, objects, bytes")):
        sub.add_parser(name, help=text, description=text[:1].upper() + text[1:] + ".")
    r = sub.add_parser("restore", help="verify, then restore databases, Qdrant collections and files")
    r.add_argument("--backup", default="latest", help="backup id from `list`, or latest (default)")
    r.add_argument("--app", action="append", dest="apps", metavar="NAME", help="restore only this app (repeat)")
    r.add_argument("--skip-qdrant", action="store_true", help="do not restore Qdrant collections")
    r.add_argument("--skip-files", action="store_true", help="do not restore the apps' files")
    r.add_argument("--prune-files", action="store_true",
                   help="also delete files under an app's prefix that are not in the backup")
    s = sub.add_parser("schedule", help="run backup at every cron time (UTC), forever")
    s.add_argument("--cron", required=True, help='5-field cron expression, e.g. "0 2 * * *"')
    return p


def _run(settings: Settings, command: str, args: argparse.Namespace) -> int:
    store = BackupStore(settings)
    if command == "backup":
        run_backup(settings, store)
    elif command == "list":
        for m in list_backups(store):
            size = sum(o["size"] for o in m["objects"])
            print(f"{m['id']}\t{m['finishedAt']}\t{','.join(m['apps'])}\t{len(m['objects'])} objects\t{size} bytes")
    elif command == "restore":
        run_restore(settings, store, args.backup, args.apps, args.skip_qdrant, args.skip_files, args.prune_files)
    return errors.OK


def guarded(settings: Settings, command: str, args: argparse.Namespace) -> int:
    """Run one command and turn every failure into its exit code and one log line."""
    try:
        return _run(settings, command, args)
    except JobError as e:
        log.error("%s failed: %s", command, e)
        return e.code
    except NoCredentialsError:
        log.error("%s failed: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
                  "FILES_AWS_* for FILES_S3_BUCKET); the fleet sets them from backupAccessKeyId/"
                  "backupSecretAccessKey", command)
        return errors.CONFIG
    except (BotoCoreError, ClientError) as e:
        log.error("%s failed: S3 error: %s", command, e)
        return errors.UPLOAD_FAILED if command == "backup" else errors.UNEXPECTED
    except Exception as e:  # noqa: BLE001 - last resort: one line, no traceback with env values
        log.error("%s failed unexpectedly: %s: %s", command, type(e).__name__, e)
        return errors.UNEXPECTED


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s fleet-backup %(levelname)s %(message)s")
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "schedule":
            validate_cron(args.cron)
    except (JobError, ValueError) as e:
        log.error("configuration: %s", e)
        return errors.CONFIG
    if args.command == "schedule":
        backup_args = argparse.Namespace(command="backup")
        run_schedule(args.cron, lambda: guarded(settings, "backup", backup_args))
        return errors.OK
    return guarded(settings, args.command, args)
