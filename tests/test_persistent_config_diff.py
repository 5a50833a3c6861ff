"""`plan diff` warns when an edit changes a variable Open WebUI keeps in its database."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from plan.diff import diff_evaluations, render_diff
from plan.engine import Evaluation, evaluate


def diff_after(prod: Evaluation, edit: Callable[[dict[str, Any]], None]):
    config = copy.deepcopy(prod.config)
    edit(config)
    return diff_evaluations(prod, evaluate("prod", config), "prod", "edited")


def test_changing_a_persistent_variable_of_an_admin_ui_app_warns_once_per_app(prod: Evaluation) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["apps"]["chat"]["env"] = {"ENABLE_SIGNUP": "false", "JWT_EXPIRES_IN": "1d"}
        c["apps"]["chat"]["ollamaUrls"] = ["http://10.0.5.30:11434"]
    diff = diff_after(prod, edit)
    assert diff.warnings == [
        "apps.chat: ENABLE_OLLAMA_API, ENABLE_SIGNUP, JWT_EXPIRES_IN, OLLAMA_BASE_URLS saved in the database "
        "(settingsFrom: adminUi): this change will not take effect; change it in the admin UI, "
        "or set apps.chat.settingsFrom: stack"]
    assert "Warnings\n- apps.chat: ENABLE_OLLAMA_API" in render_diff(diff)


def test_a_variable_read_only_at_start_does_not_warn(prod: Evaluation) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["apps"]["chat"]["env"] = {"WEBSOCKET_HEARTBEAT_INTERVAL": "60"}
    diff = diff_after(prod, edit)
    assert diff.of("replace") and diff.warnings == []
