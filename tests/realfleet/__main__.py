"""`python -m tests.realfleet up [CONFIG] --state DIR` / `down --state DIR`: the fleet, run for real (root)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tests.realfleet.runner import DEFAULT_CONFIG, Runner, down


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.realfleet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up_cmd = sub.add_parser("up", help="bring the fleet up and write DIR/fleet.json")
    up_cmd.add_argument("config", nargs="?", type=Path, default=DEFAULT_CONFIG, help="a Pulumi.<stack>.yaml")
    up_cmd.add_argument("--state", type=Path, required=True)
    down_cmd = sub.add_parser("down", help="stop everything and remove the namespaces (also after a crash)")
    down_cmd.add_argument("--state", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "down":
        down(args.state)
        return 0
    try:
        fleet = Runner(args.state).up(args.config)
    except BaseException:
        print(f"realfleet: up failed; logs in {args.state / 'logs'}; cleaning up", file=sys.stderr)
        down(args.state)
        raise
    print(json.dumps({app: {"url": a["url"], "admin": a["admin"]["email"]} for app, a in fleet["apps"].items()}))
    print(f"realfleet: up in {fleet['up_seconds']:.0f} s; {args.state / 'fleet.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
