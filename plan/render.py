"""An Evaluation as the tables a person reads: nodes, containers, volumes, outputs."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import yaml

from plan.engine import CONTAINER, DOCKER_PROVIDER, IMAGE, VOLUME, Evaluation, Registered



def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _node(ev: Evaluation, resource: Registered) -> str:
    provider = ev.by_urn().get(resource.provider_urn)
    return provider.name if provider else "-"


def _image_refs(ev: Evaluation) -> dict[str, str]:
    return {r.state.get("imageId", ""): r.inputs["name"] for r in ev.of_type(IMAGE)}


def render_plan(ev: Evaluation) -> str:
    if ev.error:
        return f"stack '{ev.stack}': config rejected:\n  " + ev.error.replace("\n", "\n  ")
    out = [f"Plan for stack '{ev.stack}': {len(ev.resources)} resources to create "
           f"(evaluated under Pulumi's mock engine; no CLI, credentials or SSH used)", ""]
    counts = Counter(r.type for r in ev.resources)
    out.append(table(["resource type", "count"], sorted(counts.items())))
    out += ["", "Nodes"]
    out.append(table(["node", "docker host"], [(p.name, p.inputs.get("host")) for p in ev.of_type(DOCKER_PROVIDER)]))
    out += ["", "Containers"]
    rows, images = [], _image_refs(ev)
    for c in sorted(ev.of_type(CONTAINER), key=lambda c: (_node(ev, c), c.name)):
        inputs = c.inputs
        ports = ", ".join(f"{p.get('ip')}:{int(p['external'])}->{int(p['internal'])}" for p in inputs.get("ports", []))
        volumes = ", ".join(v.get("volumeName") or v.get("hostPath", "") for v in inputs.get("volumes", []))
        kind = "one-shot" if inputs.get("mustRun") is False else "service"
        rows.append((_node(ev, c), c.name, images.get(inputs.get("image", ""), inputs.get("image")), kind, ports or "-", volumes or "-"))
    out.append(table(["node", "container", "image", "kind", "published", "volumes"], rows))
    out += ["", "Volumes (protect True: never replaced or deleted by an edit; the others are rewritten on every deploy)"]
    out.append(table(["node", "volume", "protect", "retainOnDelete"],
                     [(_node(ev, v), v.inputs.get("name"), v.protect, v.retain_on_delete)
                      for v in sorted(ev.of_type(VOLUME), key=lambda v: (_node(ev, v), v.name))]))
    generated = [r.name for r in ev.resources if r.type.startswith("random:")]
    out += ["", f"Generated secrets ({len(generated)}): {', '.join(sorted(generated))}", "", "Outputs"]
    for name, value in sorted(ev.outputs.items()):  # as `pulumi stack output` lists them
        if name in ev.secret_outputs:
            out.append(f"{name}: [secret]")
        else:
            out.append(yaml.dump({name: value}, Dumper=_OutputDumper, sort_keys=False, default_flow_style=None,
                                 width=120).rstrip())
    return "\n".join(out)


class _OutputDumper(yaml.SafeDumper):
    """Outputs as YAML, with multi-line text (nginx.conf) as a readable block, at any depth."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_OutputDumper.add_representer(str, _text)
