"""The offline plan a person reads on a machine without the Pulumi CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from plan.engine import PROJECT_DIR, Evaluation
from plan.render import render_plan


def test_offline_plan_of_the_local_stack_lists_containers_ports_volumes_and_outputs() -> None:
    result = subprocess.run([sys.executable, "-m", "plan", "local"], cwd=PROJECT_DIR,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in ("chat-local-1", "chat-local-2", "127.0.0.1:3000->8080", "127.0.0.1:3001->8080",
                     "openwebui-postgres-data", "ghcr.io/open-webui/open-webui:v", "url: http://chat.localhost"):
        assert expected in out, expected
    assert "MOCK-GENERATED-SECRET" not in out


def test_offline_plan_of_a_bad_stack_file_prints_one_message_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text((PROJECT_DIR / "Pulumi.local.yaml").read_text().replace("local: 2", "nowhere: 2"))
    result = subprocess.run([sys.executable, "-m", "plan", "bad", "--config", str(bad)], cwd=PROJECT_DIR,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "apps.chat.replicas: node 'nowhere' is not under nodes (known: local)" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_volume_heading_claims_protection_only_for_the_rows_marked_so(prod: Evaluation) -> None:
    section = render_plan(prod).split("\n\nVolumes", 1)[1].split("\n\n", 1)[0]
    heading, _, _, *rows = section.splitlines()
    protect = {row.split()[1]: row.split()[2] for row in rows}
    assert protect["openwebui-lb-conf"] == "False" and protect["openwebui-postgres-data"] == "True"
    assert "protected:" not in heading  # it sits over unprotected rows too
    assert "protect True:" in heading
