"""Offline plan: `python -m plan STACK` prints what `pulumi up` would create, without the CLI."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plan.engine import evaluate, read_stack_file
from plan.render import render_plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plan", description=__doc__)
    parser.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--config", type=Path, help="evaluate this stack file instead")
    args = parser.parse_args(argv)
    config = read_stack_file(args.config) if args.config else None
    ev = evaluate(args.stack, config)
    print(render_plan(ev))
    return 1 if ev.error else 0


if __name__ == "__main__":
    sys.exit(main())
