"""`python plan/snapshot.py PROJECT_DIR STACK`: evaluate another checkout's program, print it as JSON.

Run by path in a process of its own (plan/at_ref.py), so that PROJECT_DIR's `components` are the ones
imported; this file's engine is loaded by path for the same reason.
"""
import gc
import importlib.util
import sys
from pathlib import Path

STACK_FILE_ERROR = 3  # the stack file could not be read; stderr says why in one line


def main(project_dir: str, stack: str) -> None:
    sys.path[0] = project_dir  # the other checkout's packages, not this one's
    spec = importlib.util.spec_from_file_location("plan_engine", Path(__file__).with_name("engine.py"))
    assert spec is not None and spec.loader is not None
    engine = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = engine  # dataclasses look their module up there
    spec.loader.exec_module(engine)
    try:
        ev = engine.evaluate(stack, project_dir=Path(project_dir))
    except engine.StackFileError as e:  # one line, named for the ref by at_ref
        sys.stderr.write(f"{e}\n")
        sys.exit(STACK_FILE_ERROR)
    sys.stdout.write(engine.evaluation_to_json(ev))


if __name__ == "__main__":
    gc.disable()  # a one-shot process: see plan/cli.py
    main(*sys.argv[1:3])
    gc.freeze()
