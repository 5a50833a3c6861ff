"""Webhook alerts: a failed run, the first success after a failure, a failed restore drill.

The payload is one JSON object. `text` is what Slack incoming webhooks and Teams (incoming webhook /
Workflows "post to a channel") display; the other fields are for a receiver of your own. The URL is a
secret (it carries the channel's token) and never appears in a log line; the payload holds no secret.
"""
from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("fleet_backup")


def event_for(command: str, code: int, previous: dict[str, Any] | None) -> str | None:
    """Which alert (if any) this outcome raises; `previous` is the last run of the same command."""
    if code != 0:
        return f"{command}_failed"
    if command == "backup" and previous is not None and previous.get("exitCode", 0) != 0:
        return "backup_recovered"
    return None


def payload(event: str, stack: str, run: dict[str, Any]) -> dict[str, Any]:
    words = {"backup_failed": "FAILED", "verify_failed": "restore drill FAILED",
             "backup_recovered": "succeeded again after a failure"}
    text = f"[fleet-backup {stack}] {run['command']} {words[event]}"
    if run.get("reason"):
        text += f" (exit {run['exitCode']}): {run['reason']}"
    elif run.get("runId"):
        text += f": run {run['runId']}"
    return {"text": text, "event": event, "stack": stack, "host": socket.gethostname(),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            **{k: run[k] for k in ("command", "exitCode", "reason", "runId", "durationSeconds") if k in run}}


def send(url: str, body: dict[str, Any], timeout: float = 10.0) -> bool:
    """POST the payload; a failing webhook is logged (without its URL) and never fails the run."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as e:
        log.warning("alert %s: the webhook answered HTTP %d", body["event"], e.code)
        return False
    except (urllib.error.URLError, OSError) as e:
        log.warning("alert %s: the webhook could not be reached (%s)", body["event"], type(e).__name__)
        return False
    log.info("alert %s: sent to the webhook", body["event"])
    return True
