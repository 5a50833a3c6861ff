"""A copy of the project as it is now (tracked and new files, committed or not), to edit and evaluate apart,
or to commit into a throwaway git repository."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from plan.engine import PROJECT_DIR, Evaluation, evaluation_from_json


SKIPPED = {".git", ".venv", "__pycache__", ".pytest_cache"}


def project_files() -> list[str]:
    if not (PROJECT_DIR / ".git").exists():  # itself a copy (tests/test_mutations.py): every file it has
        return [str(p.relative_to(PROJECT_DIR)) for p in PROJECT_DIR.rglob("*")
                if p.is_file() and not SKIPPED & set(p.relative_to(PROJECT_DIR).parts)]
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=PROJECT_DIR, check=True, capture_output=True, text=True).stdout
    return [name for name in listed.split("\0")
            if name and (PROJECT_DIR / name).is_file() and not (PROJECT_DIR / name).is_symlink()]


def copy_project(dest: Path) -> Path:
    """The work tree's files under `dest`, without caches or the virtualenv."""
    for name in project_files():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_DIR / name, dest / name)
    return dest


def evaluation_command(project: Path, stack: str) -> list[str]:
    """Evaluates `project`'s own program (its `components`, not this checkout's) and prints it as JSON."""
    return [sys.executable, str(project / "plan" / "snapshot.py"), str(project), stack]


def evaluate_copies(projects: list[Path], stack: str) -> list[Evaluation]:
    """Each project evaluated in a process of its own, all at once."""
    procs = [subprocess.Popen(evaluation_command(p, stack), cwd=p, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for p in projects]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        results.append(evaluation_from_json(out))
    return results


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", message)


def committed_copy(repo: Path) -> Path:
    """`repo`: a copy of the project (`copy_project`), committed once as `base`."""
    copy_project(repo)
    git(repo, "init", "-q")
    commit_all(repo, "base")
    return repo
