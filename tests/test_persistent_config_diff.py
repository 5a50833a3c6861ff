"""`plan diff` warns when an edit changes a variable Open WebUI keeps in its database."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from plan.diff import diff_evaluations, render_diff
from plan.engine import Evaluation, evaluate


def diff_after(prod: Evaluation, edit: Callable[[dict[str, Any]], None], settings_from: str | None = None):
    """prod (with every app's settingsFrom set, if given) against the same after `edit`."""
    before = copy.deepcopy(prod.config)
    if settings_from is not None:
        for app in before["apps"].values():
            app["settingsFrom"] = settings_from
    after = copy.deepcopy(before)
    edit(after)
    return diff_evaluations(evaluate("prod", before), evaluate("prod", after), "prod", "edited")


def edit_chat(c: dict[str, Any]) -> None:
    c["apps"]["chat"]["env"] = {"ENABLE_SIGNUP": "true", "JWT_EXPIRES_IN": "1d"}  # the program sets false
    c["apps"]["chat"]["ollamaUrls"] = ["http://10.0.5.30:11434"]


def test_changing_a_persistent_variable_of_an_admin_ui_app_warns_once_per_app(prod: Evaluation) -> None:
    diff = diff_after(prod, edit_chat, settings_from="adminUi")
    assert diff.warnings == [
        "apps.chat: ENABLE_OLLAMA_API, ENABLE_SIGNUP, JWT_EXPIRES_IN, OLLAMA_BASE_URLS saved in the database "
        "(settingsFrom: adminUi): this change will not take effect; change it in the admin UI, "
        "or set apps.chat.settingsFrom: stack"]
    assert "Warnings\n- apps.chat: ENABLE_OLLAMA_API" in render_diff(diff)


def test_a_variable_read_only_at_start_does_not_warn(prod: Evaluation) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["apps"]["chat"]["env"] = {"WEBSOCKET_HEARTBEAT_INTERVAL": "60"}
    diff = diff_after(prod, edit, settings_from="adminUi")
    assert diff.of("replace") and diff.warnings == []


def test_in_stack_mode_the_same_change_takes_effect_and_does_not_warn(prod: Evaluation) -> None:
    diff = diff_after(prod, edit_chat)
    # chat's replicas, with the new environment, and its grants step (it reads the migrating replica's id)
    assert diff.names("replace") == {"chat-master-1", "chat-slave1-1", "chat-slave1-2", "chat-analytics-grants"}
    assert diff.warnings == []
    assert "Warnings" not in render_diff(diff)


def test_oauth_settings_come_from_the_stack_even_in_admin_ui_mode(prod: Evaluation) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["apps"]["chat"]["env"] = {"OAUTH_UPDATE_NAME_ON_LOGIN": "true"}
    diff = diff_after(prod, edit, settings_from="adminUi")
    assert diff.of("replace") and diff.warnings == []
