"""Which image tags float: one vocabulary for the config model and the policy pack (stdlib only)."""
from __future__ import annotations

import re

# Moving whatever else the tag says (`latest-alpine`, `nightly-2024`); the second set moves when nothing
# in the tag is a version (`stable`, `release`), but names one release in `RELEASE.2024-11-07T00-52-20Z`.
ALWAYS_FLOATING = frozenset({"latest", "main", "master", "dev", "develop", "development", "edge", "nightly",
                             "canary", "unstable", "head", "trunk", "snapshot"})
FLOATING_WITHOUT_VERSION = ALWAYS_FLOATING | {"stable", "next", "current", "beta", "alpha", "rc", "lts",
                                              "mainline", "testing", "preview", "release"}


def split_image_ref(ref: str) -> tuple[str, str | None, str | None]:
    """`registry:5000/repo:tag@sha256:…` → (repository, tag or None, digest or None)."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:  # a colon before the last slash is a registry port, not a tag
        return ref[:colon], ref[colon + 1:], digest
    return ref, None, digest


def floating_tag(tag: str) -> bool:
    words = set(re.split(r"[-_.]", tag.lower()))
    return bool(words & ALWAYS_FLOATING) or (not re.search(r"\d", tag) and bool(words & FLOATING_WITHOUT_VERSION))
