"""What every component's containers share: env lines, health checks, protection of stateful volumes."""
from __future__ import annotations

import pulumi
import pulumi_docker as docker

# Data volumes outlive any config edit: protect blocks replace/delete, retain keeps the data if
# someone unprotects and removes the service anyway.
STATEFUL = {"protect": True, "retain_on_delete": True}


def env_list(plain: dict[str, str], secret: dict[str, pulumi.Output[str]]) -> pulumi.Input[list[str]]:
    """A container's `envs`: KEY=value lines, sorted so the diff of an edit is one line."""
    lines: dict[str, pulumi.Input[str]] = {k: f"{k}={v}" for k, v in plain.items()}
    lines.update({k: pulumi.Output.concat(f"{k}=", v) for k, v in secret.items()})
    return [lines[k] for k in sorted(lines)]


HEALTH_TIMEOUT_S = 5
HEALTH_RETRIES = 5  # consecutive failures before Docker calls a container unhealthy


def healthcheck(*test: str, start_period: str = "20s") -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(tests=["CMD-SHELL", *test], interval="10s",
                                           timeout=f"{HEALTH_TIMEOUT_S}s", retries=HEALTH_RETRIES,
                                           start_period=start_period)
