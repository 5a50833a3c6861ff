"""App databases on Open WebUI's REAL schema: its own alembic migrations (the installed, pinned
open-webui package), run as the app's role exactly as a migrating replica does, then filled with a
bulk COPY into its real tables. Used by tests/fleet_analytics and benchmarks/analytics_bench.py.

The Open WebUI virtualenv is found like the real-fleet suite finds it: $OPENWEBUI_VENV, else the
repository's ignored `.cache/openwebui-venv` (scripts/realfleet.sh installs it there).
"""
from __future__ import annotations

import json
import os
import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from components.render.postgres import (ANALYTICS_GRANTS_SQL, APP_DATABASE_SQL, analytics_grants_env,
                                        app_database, app_database_env)
from realservices import Postgres, require_binary

REPO = Path(__file__).resolve().parent.parent
DAY = 86400

# Open WebUI's own startup path (open_webui/config.py: run_migrations), without importing the app.
_MIGRATE = """
import pathlib, open_webui
from alembic import command
from alembic.config import Config
root = pathlib.Path(open_webui.__file__).parent
config = Config(root / "alembic.ini")
config.set_main_option("script_location", str(root / "migrations"))
command.upgrade(config, "head")
"""


def openwebui_python() -> str:
    """The Open WebUI venv's python; skip without it, except in CI where it is a failure."""
    venv = Path(os.environ.get("OPENWEBUI_VENV") or REPO / ".cache" / "openwebui-venv")
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import open_webui, psycopg2"],
                                          capture_output=True).returncode == 0:
        return str(python)
    message = (f"Open WebUI is not installed in {venv} (set OPENWEBUI_VENV, or run scripts/realfleet.sh, "
               "which installs it there)")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class AppDb:
    app: str
    pg: Postgres
    password: str
    analytics_password: str

    @property
    def database(self) -> str:
        return app_database(self.app)[1]

    def connect_as_app(self) -> psycopg.Connection:
        return psycopg.connect(host=self.pg.host, port=self.pg.port, dbname=self.database,
                               user=app_database(self.app)[0], password=self.password, autocommit=True)

    def analytics_env(self) -> dict[str, str]:
        """What fleet_analytics needs to read this app: libpq's host/port and the role's password."""
        return {"PGHOST": self.pg.host, "PGPORT": str(self.pg.port),
                f"ANALYTICS_PASSWORD_{self.app.replace('-', '_').upper()}": self.analytics_password}


def create_app_database(pg: Postgres, app: str, python: str, workdir: Path, grants: bool = True) -> AppDb:
    """The app's bootstrap SQL (roles, database), then Open WebUI's migrations as the app's role, then
    (unless `grants` is false) the analytics-grants step, in a deploy's order."""
    db = AppDb(app, pg, f"{app}-app-password", f"{app}-analytics-password")
    script = workdir / "app-database.sql"
    script.write_text(APP_DATABASE_SQL)
    env = {**os.environ, **app_database_env(app, pg.host, pg.port, pg.superuser), "PGPASSWORD": pg.password,
           "APP_DB_PASSWORD": db.password, "APP_ANALYTICS_PASSWORD": db.analytics_password}
    subprocess.run([require_binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)],
                   env=env, check=True, capture_output=True)
    role = app_database(app)[0]
    data_dir = workdir / f"{app}-data"
    data_dir.mkdir(exist_ok=True)
    migrate_env = {"PATH": os.environ["PATH"], "HOME": str(data_dir), "DATA_DIR": str(data_dir),
                   "DATABASE_URL": f"postgresql://{role}:{db.password}@{pg.host}:{pg.port}/{db.database}",
                   "WEBUI_SECRET_KEY": "test", "OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([python, "-c", _MIGRATE], env=migrate_env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"Open WebUI's migrations failed for {app}:\n{result.stderr[-3000:]}")
    if grants:
        grant_analytics(db, workdir)
    return db


def grant_analytics(db: AppDb, workdir: Path) -> None:
    """The app's analytics-grants step, as the program runs it after the migrating replica is healthy."""
    script = workdir / "analytics-grants.sql"
    script.write_text(ANALYTICS_GRANTS_SQL)
    env = {**os.environ, **analytics_grants_env(db.app, db.pg.host, db.pg.port), "PGPASSWORD": db.password}
    subprocess.run([require_binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)],
                   env=env, check=True, capture_output=True)


@dataclass
class Dataset:
    """Rows as they go into Open WebUI's tables; tests compute expected numbers from these lists."""
    users: list[tuple[str, str, str, int]] = field(default_factory=list)  # id, name, email, created_at
    chats: list[tuple[str, str, int]] = field(default_factory=list)  # id, user_id, created_at
    # id, chat_id, user_id, role, model_id, usage (dict or None), created_at
    messages: list[tuple[str, str, str, str, str | None, dict | None, int]] = field(default_factory=list)
    files: list[tuple[str, str, int, int | None]] = field(default_factory=list)  # id, user_id, created_at, size
    knowledge: list[tuple[str, str, int]] = field(default_factory=list)  # id, user_id, created_at


MODELS = ["gpt-4o", "llama3.1:8b", "mistral-small", "qwen2.5:14b", "claude.v3"]
CONTENT_MARKER = "PRIVATE-CONTENT-7c41"  # in every message's content; must never reach a report


def generate(app: str, messages: int, start: int, days: int, seed: int, users: int | None = None) -> Dataset:
    """A deterministic usage history: chats of alternating user/assistant messages over `days` days.

    Usage comes in the shapes Open WebUI stores: normalized (input_tokens/output_tokens), OpenAI's
    (prompt_tokens/completion_tokens, from rows migrated out of chat JSON), none at all, or garbage.
    """
    rng = random.Random(seed)
    n_users = users or max(3, messages // 400)
    ds = Dataset()
    for i in range(n_users):
        ds.users.append((f"{app}-u{i}", f"User {i} of {app}", f"user{i}@{app}.example", start - DAY * 30))
    left, c = messages, 0
    while left > 0:
        user = ds.users[min(int(rng.paretovariate(1.2)) - 1, n_users - 1)][0]  # a few heavy users
        t = start + rng.randrange(days * DAY)
        chat_id = f"{app}-c{c}"
        ds.chats.append((chat_id, user, t))
        length = min(left, 2 * rng.randint(1, 10))
        model = rng.choice(MODELS)
        for m in range(length):
            role = "user" if m % 2 == 0 else "assistant"
            usage: dict | None = None
            if role == "assistant":
                shape = rng.random()
                if shape < 0.6:
                    i, o = rng.randint(10, 4000), rng.randint(1, 2000)
                    usage = {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}
                elif shape < 0.8:
                    usage = {"prompt_tokens": rng.randint(10, 4000), "completion_tokens": rng.randint(1, 2000)}
                elif shape < 0.85:
                    usage = {"input_tokens": "n/a"}
            ds.messages.append((f"{chat_id}-m{m}", chat_id, user, role,
                                model if role == "assistant" or m == 0 else None, usage,
                                min(t + m * 30, start + days * DAY - 1)))
        left -= length
        c += 1
    for f in range(max(1, messages // 100)):
        ds.files.append((f"{app}-f{f}", rng.choice(ds.users)[0], start + rng.randrange(days * DAY),
                         rng.choice([None, rng.randint(100, 10_000_000)])))
    for k in range(max(1, messages // 1000)):
        ds.knowledge.append((f"{app}-k{k}", rng.choice(ds.users)[0], start + rng.randrange(days * DAY)))
    return ds


def load(db: AppDb, ds: Dataset) -> None:
    """Bulk COPY into Open WebUI's real tables, as the app's role (the owner, like Open WebUI itself)."""
    content = json.dumps(f"{CONTENT_MARKER}: what the person wrote")
    with db.connect_as_app() as conn, conn.transaction():
        with conn.cursor().copy('COPY "user" (id, name, email, role, created_at, updated_at, last_active_at) '
                                "FROM STDIN") as copy:
            for uid, name, email, created in ds.users:
                copy.write_row((uid, name, email, "user", created, created, created))
        with conn.cursor().copy("COPY chat (id, user_id, title, created_at, updated_at, archived, chat, meta) "
                                "FROM STDIN") as copy:
            for cid, uid, created in ds.chats:
                copy.write_row((cid, uid, "a title", created, created, False,
                                '{"history": {"messages": {}}}', "{}"))
        with conn.cursor().copy("COPY chat_message (id, chat_id, user_id, role, model_id, content, usage, done, "
                                "created_at, updated_at) FROM STDIN") as copy:
            for mid, cid, uid, role, model, usage, created in ds.messages:
                copy.write_row((mid, cid, uid, role, model, content,
                                None if usage is None else json.dumps(usage), True, created, created))
        with conn.cursor().copy("COPY file (id, user_id, filename, meta, created_at, updated_at) FROM STDIN") as copy:
            for fid, uid, created, size in ds.files:
                meta = {"name": "doc.pdf", **({"size": size} if size is not None else {})}
                copy.write_row((fid, uid, "doc.pdf", json.dumps(meta), created, created))
        with conn.cursor().copy("COPY knowledge (id, user_id, name, created_at, updated_at) FROM STDIN") as copy:
            for kid, uid, created in ds.knowledge:
                copy.write_row((kid, uid, "a knowledge base", created, created))
        conn.execute("ANALYZE")
