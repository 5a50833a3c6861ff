"""Offline plan: `python -m plan STACK` prints what `pulumi up` would create, without the CLI.

`python -m plan diff STACK --against-ref origin/main` (or `--old FILE [--new FILE]`) prints what a
change would do: resources to create, replace, update and delete. Against a ref, the project as it was
there (its program and its stack file) is compared with the work tree's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from plan.engine import PROJECT_DIR, evaluate, parse_stack_text, read_stack_file
from plan.render import render_plan


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["diff"]:
        return diff_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m plan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--config", type=Path, help="evaluate this stack file instead")
    args = parser.parse_args(argv)
    config = read_stack_file(args.config) if args.config else None
    ev = evaluate(args.stack, config)
    print(render_plan(ev))
    return 1 if ev.error else 0


class StackFileError(Exception):
    """A stack file that cannot be read (missing at a ref, broken YAML); the message says which."""


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return parse_stack_text(text)
    except yaml.YAMLError as e:
        raise StackFileError(f"{source}: not valid YAML: {e}") from None


def _read(path: Path) -> dict[str, Any]:
    try:
        return _parse(path.read_text(), str(path))
    except OSError as e:
        raise StackFileError(f"{path}: {e.strerror}") from None


def diff_main(argv: list[str]) -> int:
    from plan.at_ref import RefError, evaluate_at_ref
    from plan.diff import diff_evaluations, render_diff
    parser = argparse.ArgumentParser(
        prog="python -m plan diff",
        description="What changes between two versions of a stack file: create, replace, update, delete.")
    parser.add_argument("stack", help="stack name: Pulumi.<stack>.yaml")
    old = parser.add_mutually_exclusive_group(required=True)
    old.add_argument("--against-ref", metavar="REF",
                     help="old = the project at this git ref, its program and stack file (e.g. origin/main)")
    old.add_argument("--old", type=Path, metavar="FILE", help="old = this stack file")
    parser.add_argument("--new", type=Path, metavar="FILE", help="new = this stack file (default: the work tree's)")
    args = parser.parse_args(argv)
    new_path = args.new or PROJECT_DIR / f"Pulumi.{args.stack}.yaml"
    try:
        new_config = _read(new_path)
        old = evaluate_at_ref(args.stack, args.against_ref) if args.against_ref else evaluate(args.stack, _read(args.old))
    except (StackFileError, RefError) as e:
        print(f"stack '{args.stack}': {e}")
        return 1
    old_label = f"{args.against_ref}:Pulumi.{args.stack}.yaml" if args.against_ref else str(args.old)
    diff = diff_evaluations(old, evaluate(args.stack, new_config), old_label,
                            str(new_path if args.new else new_path.name))
    print(render_diff(diff))
    return 1 if diff.error else 0


if __name__ == "__main__":
    sys.exit(main())
