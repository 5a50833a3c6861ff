"""Evaluate the whole project as committed at a git ref: its own program with its own stack file.

The program at the ref may differ from the work tree's (components renamed, an env var added), so it
runs in a process of its own from a `git archive` of the ref; this tree's engine evaluates it there and
hands the result back as JSON. A pull request that changes only code thus shows what it does to a stack.
"""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from plan.engine import PROJECT_DIR, Evaluation, evaluation_from_json

_SNAPSHOT = Path(__file__).with_name("snapshot.py")
_STACK_FILE_ERROR = 3  # snapshot.py's exit code for a stack file it cannot read


class RefError(Exception):
    """The ref, its stack file or its program could not be evaluated; the message says which."""


def evaluate_at_ref(stack: str, ref: str, project_dir: Path = PROJECT_DIR) -> Evaluation:
    archive = subprocess.run(["git", "archive", "--format=tar", f"{ref}:./"], cwd=project_dir,
                             capture_output=True)
    if archive.returncode != 0:
        raise RefError(f"git archive {ref}: {archive.stderr.decode(errors='replace').strip() or 'failed'}")
    with tempfile.TemporaryDirectory(prefix="plan-at-ref-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        if not (Path(tmp) / f"Pulumi.{stack}.yaml").is_file():
            raise RefError(f"{ref}:Pulumi.{stack}.yaml: no such stack file at that ref")
        run = subprocess.run([sys.executable, str(_SNAPSHOT), tmp, stack], cwd=tmp,
                             capture_output=True, text=True)
    last = (run.stderr.strip().splitlines() or ["failed"])[-1]
    if run.returncode == _STACK_FILE_ERROR:
        raise RefError(f"{ref}:{last}")
    if run.returncode != 0:
        raise RefError(f"evaluating the program at {ref}: {last}")
    return evaluation_from_json(run.stdout)
