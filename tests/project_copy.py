"""A throwaway git repository holding this work tree's files as they are now (committed or not)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from plan.engine import PROJECT_DIR


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", message)


def committed_copy(repo: Path) -> Path:
    """`repo`: every tracked or new (not ignored) file of the work tree, committed once as `base`."""
    listed = git(PROJECT_DIR, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in listed:
        if name and (PROJECT_DIR / name).is_file() and not (PROJECT_DIR / name).is_symlink():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_DIR / name, repo / name)
    git(repo, "init", "-q")
    commit_all(repo, "base")
    return repo
