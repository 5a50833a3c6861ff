"""Offline plan: `python -m plan STACK` prints what `pulumi up` would create, without the CLI.

`python -m plan diff STACK --against-ref origin/main` (or `--old FILE [--new FILE]`) prints what a
change would do: resources to create, replace, update and delete. Against a ref, the project as it was
there (its program and its stack file) is compared with the work tree's.

Exit codes: 0 the plan (or diff) was printed; 1 a stack file or its config has a problem, each said in
one line that names the file or key and the fix; 2 usage (unknown option, missing argument).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plan.cli import exit_code, one_shot

one_shot(__name__)  # before the imports below: no collections while pulumi and the program load

from plan.engine import Evaluation, StackFileError, evaluate, read_stack_file, stack_config  # noqa: E402
from plan.render import render_plan  # noqa: E402

OK, BAD_CONFIG = 0, 1  # argparse exits 2 on a usage error


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["diff"]:
        return diff_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m plan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--config", type=Path, help="evaluate this stack file instead")
    args = parser.parse_args(argv)
    try:
        ev = evaluate(args.stack, load(args.stack, args.config))
    except StackFileError as e:
        return fail(e)
    print(render_plan(ev))
    return BAD_CONFIG if ev.error else OK


def load(stack: str, path: Path | None = None) -> dict:
    """The one way in for a stack file of this tree: `path`, or Pulumi.<stack>.yaml. Raises StackFileError."""
    return read_stack_file(path) if path is not None else stack_config(stack)


def fail(error: Exception) -> int:
    print(error)
    return BAD_CONFIG


def diff_main(argv: list[str]) -> int:
    from plan.at_ref import RefError, evaluate_at_ref
    from plan.diff import diff_evaluations, render_diff
    parser = argparse.ArgumentParser(
        prog="python -m plan diff", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="What changes between two versions of a stack file: create, replace, update, delete.\n\n"
                    + __doc__.split("\n\n")[-1])
    parser.add_argument("stack", help="stack name: Pulumi.<stack>.yaml")
    old = parser.add_mutually_exclusive_group(required=True)
    old.add_argument("--against-ref", metavar="REF",
                     help="old = the project at this git ref, its program and stack file (e.g. origin/main)")
    old.add_argument("--old", type=Path, metavar="FILE", help="old = this stack file")
    parser.add_argument("--new", type=Path, metavar="FILE", help="new = this stack file (default: the work tree's)")
    args = parser.parse_args(argv)
    try:
        new_config = load(args.stack, args.new)
        old: Evaluation = (evaluate_at_ref(args.stack, args.against_ref) if args.against_ref
                           else evaluate(args.stack, load(args.stack, args.old)))
    except (StackFileError, RefError) as e:
        return fail(e)
    old_label = f"{args.against_ref}:Pulumi.{args.stack}.yaml" if args.against_ref else str(args.old)
    new_label = str(args.new) if args.new else f"Pulumi.{args.stack}.yaml"
    diff = diff_evaluations(old, evaluate(args.stack, new_config), old_label, new_label)
    print(render_diff(diff))
    return BAD_CONFIG if diff.error else OK


if __name__ == "__main__":
    sys.exit(exit_code(main()))
