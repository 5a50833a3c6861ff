"""Open WebUI's healthcheck, which also ends a replica that has stopped answering.

Docker only marks a container unhealthy; it never restarts it for that. An Open WebUI 0.12.4 replica
whose Redis pub/sub connection fails with ETIMEDOUT (redis-py's TCP keepalive giving up during a
network cut of ~45 s or more) spins in redis-py's `PubSub.listen` for good (tests/realfleet/NOTES.md,
finding 1). So the check counts consecutive failures of a replica that has answered once, and at
`failures` it kills every process of the container but its init (`init: true`): the init exits, and
the restart policy starts the container again. The count lives in the container's /tmp, which outlives a
restart, so it is tagged with the start time of the container's init (PID 1): after any (re)start the
replica must answer once before its failures count.
"""
from __future__ import annotations

FAILURES_FILE = "/tmp/fleet-health-failures"
# The container's init; the realfleet runner, which has no container, rewrites these texts.
INIT_STAT = "/proc/1/stat"
KILL_ALL_BUT_INIT = "kill -KILL -1"


def watchdog_healthcheck(url: str, failures: int, max_seconds: int) -> str:
    """A CMD-SHELL test: 0 when `url` answers within `max_seconds` (keep it under the check's
    timeout, or Docker ends the check before it counts)."""
    f = FAILURES_FILE
    return (f"start=$(sed 's/.*) //' {INIT_STAT} | cut -d' ' -f20); "   # field 22, after the name
            f"if curl --fail --silent --output /dev/null --max-time {max_seconds} {url}; "
            f'then echo "$start 0" > {f}; exit 0; fi; '
            f"[ -f {f} ] || exit 1; "
            f"read -r since n < {f}; "
            '[ "$since" = "$start" ] || exit 1; '   # not answered yet since this start
            "n=$((n + 1)); "
            f'if [ $n -ge {failures} ]; then {KILL_ALL_BUT_INIT}; else echo "$start $n" > {f}; fi; '
            "exit 1")
