"""A stack with `sharedServices.tls: true`, for the tests that read or run what it declares."""
from __future__ import annotations

import copy
from typing import Any

from plan.engine import stack_config


def with_tls(stack: str) -> dict[str, Any]:
    """`stack` with tls on; backups into the fleet's own MinIO are refused with tls, so they (and the
    reports) go to AWS."""
    config = copy.deepcopy(stack_config(stack))
    config["sharedServices"]["tls"] = True
    if config["backup"].get("provider") == "minio":
        config["backup"] = {**config["backup"], "provider": "aws"}
        for key in ("endpoint", "jobEndpoint"):
            config["backup"].pop(key)
        config["backupAccessKeyId"], config["backupSecretAccessKey"] = {"secure": "v1:K"}, {"secure": "v1:S"}
        if "analytics" in config:  # the report job's own keys on that store, never the backup job's
            config["analyticsAccessKeyId"], config["analyticsSecretAccessKey"] = ({"secure": "v1:AK"},
                                                                                  {"secure": "v1:AS"})
    return config
