"""What an edit of stack config would change: two evaluations compared resource by resource (URN).

`diff_evaluations(old, new)` sorts every custom resource into create / replace / update / delete
(component resources are not counted: they have no provider and nothing to change on a node);
`render_diff` prints it next to `pulumi preview`. Replace vs update follows each provider's schema:

- docker (pulumi-docker 5.x, as requirements.txt pins it, bridges kreuzwerker/terraform-provider-docker): a Container input is
  ForceNew unless it is in CONTAINER_UPDATABLE (the non-ForceNew schema attributes of
  internal/provider/resource_docker_container.go; only restart, memory*, cpu_shares/cpu_set and the
  device limits are applied by `docker update`, the rest only change how the provider waits or logs).
  Volume and Network inputs are all ForceNew; RemoteImage only keepLocally/forceRemove update.
- command:remote: a change of `triggers` replaces; anything else runs the update.
- aws s3: a change of the bucket name replaces; other arguments update.
- random: every input replaces. Provider resources: updated (their resources stay put).
- Any other type: assumed to replace (said in the notes).
- An input reading an output of a replaced (or new) resource is unknown in `pulumi preview`, so it
  changes too, even if the mock engine's value is the same (its ids do not change on replace):
  replace or update by that input as above, transitively, noted `reads replaced <name>`.

Values are compared after the mock engine resolved them; secret inputs are never printed.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from components.render.openwebui_settings import saved_in_database
from plan.engine import (BUCKET, CONTAINER, DOCKER_PROVIDER, IMAGE, NETWORK, VOLUME, Evaluation,
                         Registered, is_secret, unwrap)
from plan.graph import dependents, topological_order, waits_for


CONTAINER_UPDATABLE = frozenset({
    "restart", "maxRetryCount", "memory", "memoryReservation", "memorySwap", "cpuShares", "cpuSet",
    "cpuPeriod", "cpuQuota", "deviceReadBps", "deviceReadIops", "deviceWriteBps", "deviceWriteIops",
    "rm", "start", "wait", "waitTimeout", "attach", "logs", "mustRun", "removeVolumes",
    "destroyGraceSeconds", "healthcheck", "containerReadRefreshTimeoutMilliseconds"})
# Types the provider always replaces delete-before-replace (pulumi-docker: container names are unique).
DELETE_BEFORE_REPLACE_TYPES = frozenset({CONTAINER})
NGINX_OUTPUT = "lb.nginxConf"  # as printed
FIREWALL_OUTPUT = "firewallRules"  # node -> nftables ruleset, when firewall.enabled
_ENV_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")


def forces_replacement(type_: str, key: str) -> bool:
    """Whether a change of input `key` makes the provider replace a resource of `type_`."""
    if type_ == CONTAINER:
        return key not in CONTAINER_UPDATABLE
    if type_ in (VOLUME, NETWORK):
        return True
    if type_ == IMAGE:
        return key not in {"keepLocally", "forceRemove"}
    if type_.startswith("command:"):
        return key == "triggers"
    if type_ == BUCKET:
        return key in {"bucket", "bucketPrefix"}
    if type_.startswith("aws:s3/"):
        return key in {"bucket", "expectedBucketOwner"}
    if type_.startswith("pulumi:providers:"):
        return False
    return True  # random:* and anything unknown


def _known_type(type_: str) -> bool:
    return type_.startswith(("docker:", "command:", "aws:s3/", "random:", "pulumi:providers:"))


@dataclass(frozen=True)
class Change:
    action: str                 # create | replace | update | delete
    urn: str
    type: str
    name: str
    node: str                   # the docker provider's name, or "-"
    keys: tuple[str, ...] = ()  # changed inputs as printed: `image`, `envs [secret] (BACKUP_APPS)`
    replace_keys: tuple[str, ...] = ()
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    notes: tuple[str, ...] = ()

    @property
    def blocked_by_protect(self) -> bool:
        """`pulumi up` refuses to replace or delete a protected resource."""
        return self.protect and self.action in ("replace", "delete")


@dataclass
class PlanDiff:
    old_label: str
    new_label: str
    changes: list[Change] = field(default_factory=list)
    nginx_diff: str = ""
    firewall_diff: str | None = None  # None: no firewall on either side
    error: str | None = None
    # Edits `pulumi up` applies but Open WebUI will not act on (values saved in its database).
    warnings: list[str] = field(default_factory=list)

    def of(self, action: str) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    def names(self, action: str) -> set[str]:
        return {c.name for c in self.of(action)}

    def counts(self) -> dict[str, int]:
        return {a: len(self.of(a)) for a in ("create", "replace", "update", "delete")}

    @property
    def blocked(self) -> list[Change]:
        return [c for c in self.changes if c.blocked_by_protect]


def _contains_secret(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(_contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secret(v) for v in value)
    return False


def _env_names(old: Any, new: Any) -> list[str]:
    """For KEY=value lists: the KEYs whose line was added, removed or changed (names, never values)."""
    def lines(v: Any) -> dict[str, str] | None:
        if not isinstance(v, list) or not all(isinstance(x, str) and _ENV_LINE.match(x) for x in v):
            return None
        return {x.split("=", 1)[0]: x for x in v}
    a, b = lines(old), lines(new)
    if a is None or b is None:
        return []
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def _shown_key(key: str, old: Registered, new: Registered) -> str:
    raw_old, raw_new = old.raw_inputs.get(key), new.raw_inputs.get(key)
    shown = key + (" [secret]" if _contains_secret(raw_old) or _contains_secret(raw_new) else "")
    names = _env_names(unwrap(raw_old), unwrap(raw_new))
    return f"{shown} ({', '.join(names)})" if names else shown


def _node(ev: Evaluation, r: Registered) -> str:
    if r.type == DOCKER_PROVIDER:
        return r.name
    provider = ev.by_urn().get(r.provider_urn)
    return provider.name if provider is not None and provider.type == DOCKER_PROVIDER else "-"


def _delete_notes(r: Registered) -> tuple[str, ...]:
    notes = []
    if r.protect:
        notes.append("protected: see Notes")  # the unprotect command (a full URN) is listed there
    if r.retain_on_delete:
        notes.append("retained: data kept")
    return tuple(notes)


def compare(old_r: Registered, new_r: Registered, old: Evaluation, new: Evaluation,
            renamed: dict[str, str] | None = None) -> Change | None:
    """The change between two registrations of one resource (one URN, or an aliased rename: `renamed`
    maps such a new URN to its old one), or None if nothing changed."""
    old_in, new_in = old_r.inputs, new_r.inputs
    changed = sorted(k for k in old_in.keys() | new_in.keys() if old_in.get(k) != new_in.get(k))
    replace_keys = [k for k in changed if forces_replacement(new_r.type, k)]
    notes: list[str] = []
    if old_r.provider_urn != (renamed or {}).get(new_r.provider_urn, new_r.provider_urn):
        replace_keys.append("[provider]")
        changed.append("[provider]")
    options = [o for o, a, b in (("protect", old_r.protect, new_r.protect),
                                 ("retainOnDelete", old_r.retain_on_delete, new_r.retain_on_delete))
               if a != b]
    if not changed and not options:
        return None
    if replace_keys and not _known_type(new_r.type):
        notes.append("type not modelled: assumed replace")
    action = "replace" if replace_keys else "update"
    if action == "replace":
        notes += _delete_notes(old_r)[:1]
        if new_r.delete_before_replace or new_r.type in DELETE_BEFORE_REPLACE_TYPES:
            notes.append("delete-before-replace")
    shown = tuple(_shown_key(k, old_r, new_r) if not k.startswith("[") else k for k in changed)
    shown += tuple(f"[option {o}]" for o in options)
    return Change(action, new_r.urn, new_r.type, new_r.name, _node(new, new_r), shown,
                  tuple(replace_keys), old_r.protect, old_r.retain_on_delete,
                  new_r.delete_before_replace or new_r.type in DELETE_BEFORE_REPLACE_TYPES, tuple(notes))


def nginx_conf(ev: Evaluation) -> str:
    """The LB's nginx.conf from the stack outputs (`lb.nginxConf`), or "" without a load balancer."""
    # `lbNginxConf`: its name before it moved under `lb`, so a diff against an older ref still lines up.
    return (ev.outputs.get("lb") or {}).get("nginxConf") or ev.outputs.get("lbNginxConf") or ""


def nginx_conf_diff(old: Evaluation, new: Evaluation) -> str:
    if "lb" in old.secret_outputs or "lb" in new.secret_outputs:
        return "[secret]"
    a, b = nginx_conf(old), nginx_conf(new)
    return "".join(difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(keepends=True),
                                        f"{NGINX_OUTPUT} (old)", f"{NGINX_OUTPUT} (new)"))


def diff_evaluations(old: Evaluation, new: Evaluation, old_label: str = "old",
                     new_label: str = "new") -> PlanDiff:
    result = PlanDiff(old_label, new_label)
    errors = [f"{label}: {line}" for label, ev in ((old_label, old), (new_label, new)) if ev.error
              for line in ev.error.splitlines()]
    if errors:
        result.error = "\n".join(errors)
        return result
    before = {r.urn: r for r in old.resources if r.custom}
    after = {r.urn: r for r in new.resources if r.custom}
    renamed = aliased_renames(old, new)
    for urn, r in after.items():
        old_urn = renamed.get(urn, urn)
        if old_urn not in before:
            result.changes.append(Change("create", urn, r.type, r.name, _node(new, r),
                                         protect=r.protect, retain_on_delete=r.retain_on_delete))
        else:
            change = compare(before[old_urn], r, old, new, renamed)
            if change is not None:
                result.changes.append(change)
    kept = {renamed.get(urn, urn) for urn in after}
    for urn, r in before.items():
        if urn not in kept:
            result.changes.append(Change("delete", urn, r.type, r.name, _node(old, r), protect=r.protect,
                                         retain_on_delete=r.retain_on_delete, notes=_delete_notes(r)))
    _cascade_unknowns(result, before, after, new, renamed)
    result.nginx_diff = nginx_conf_diff(old, new)
    result.warnings = _persistent_config_warnings(result, before, after, renamed)
    result.firewall_diff = firewall_rules_diff(old, new)
    return result


def _cascade_unknowns(result: PlanDiff, before: dict[str, Registered], after: dict[str, Registered],
                      new: Evaluation, renamed: dict[str, str]) -> None:
    """Resources whose inputs read an output of a replaced or created one: `pulumi preview` sees those
    inputs as unknown, so they change too, replaced or updated as the input's schema says (mock ids do
    not change on replace, so comparing values alone misses them). In dependency order: transitive."""
    changes = {c.urn: c for c in result.changes}
    unknown = {u for u, c in changes.items() if c.action in ("replace", "create")}
    if not unknown:
        return
    for urn in topological_order(waits_for(new.resources)):
        r, earlier = after.get(urn), changes.get(urn)
        if r is None or (earlier is not None and earlier.action in ("create", "replace")):
            continue
        reads = {k: [u for u in deps if u in unknown] for k, deps in r.property_dependencies.items()}
        keys = sorted(k for k, urns in reads.items() if urns)
        if not keys:
            continue
        old_r = before[renamed.get(urn, urn)]
        replace_keys = [k for k in keys if forces_replacement(r.type, k)]
        read = {u for k in keys for u in reads[k]}
        notes = [f"reads {what} {', '.join(sorted(after[u].name for u in urns))}"
                 for what, urns in (("replaced", {u for u in read if changes[u].action == "replace"}),
                                    ("new", {u for u in read if changes[u].action == "create"})) if urns]
        if replace_keys:
            unknown.add(urn)
            notes += _delete_notes(old_r)[:1]
            if r.delete_before_replace or r.type in DELETE_BEFORE_REPLACE_TYPES:
                notes.append("delete-before-replace")
        shown = [_shown_key(k, old_r, r) for k in keys]
        if earlier is not None:
            shown = list(earlier.keys) + [k for k in shown if k not in earlier.keys]
            replace_keys = list(earlier.replace_keys) + replace_keys
            notes = [*notes, *(n for n in earlier.notes if n not in notes)]
        change = Change("replace" if replace_keys else "update", urn, r.type, r.name, _node(new, r),
                        tuple(shown), tuple(dict.fromkeys(replace_keys)), old_r.protect, old_r.retain_on_delete,
                        r.delete_before_replace or r.type in DELETE_BEFORE_REPLACE_TYPES, tuple(notes))
        changes[urn] = change
    result.changes = list(changes.values())


def firewall_rules_diff(old: Evaluation, new: Evaluation) -> str | None:
    """Each node's nftables ruleset, old vs new (a node without a firewall on one side: empty there)."""
    if FIREWALL_OUTPUT not in old.outputs and FIREWALL_OUTPUT not in new.outputs:
        return None
    a, b = old.outputs.get(FIREWALL_OUTPUT) or {}, new.outputs.get(FIREWALL_OUTPUT) or {}
    return "".join("".join(difflib.unified_diff(
        (a.get(node) or "").splitlines(keepends=True), (b.get(node) or "").splitlines(keepends=True),
        f"{FIREWALL_OUTPUT}.{node} (old)", f"{FIREWALL_OUTPUT}.{node} (new)")) for node in sorted({*a, *b}))


def aliased_renames(old: Evaluation, new: Evaluation) -> dict[str, str]:
    """New URN -> old URN for every resource of `new` that is absent from `old` under its own URN but
    present under one its `aliases` (or its parent's, as the engine inherits them) give."""
    old_urns = {r.urn for r in old.resources}
    new_by_urn = new.by_urn()
    memo: dict[str, set[str]] = {}

    def names(urn: str) -> set[str]:
        """Every URN the resource at `urn` may have had: its own and those its aliases give."""
        if urn in memo:
            return memo[urn]
        memo[urn] = {urn}
        r = new_by_urn.get(urn)
        if r is None:
            return memo[urn]
        stack_project, _, _ = urn.rpartition("::")
        stack_project = "::".join(stack_project.split("::")[:2])
        parents = names(r.parent) if r.parent else {""}
        specs = [{}, *r.aliases]
        found = {urn}
        for spec in specs:
            if "urn" in spec:
                found.add(spec["urn"])
                continue
            type_, name = spec.get("type") or r.type, spec.get("name") or r.name
            for parent in ([spec["parentUrn"]] if spec.get("parentUrn") else [""] if spec.get("noParent") else parents):
                parent_type = parent.split("::")[2] if parent else ""
                qualified = type_ if parent_type in ("", "pulumi:pulumi:Stack") else f"{parent_type}${type_}"
                found.add(f"{stack_project}::{qualified}::{name}")
        memo[urn] = found
        return found

    renamed, gone = {}, old_urns - set(new_by_urn)
    for r in new.resources:
        if r.urn not in old_urns:
            earlier = sorted(names(r.urn) & gone)
            if earlier:
                renamed[r.urn] = earlier[0]
    return renamed


APP_LABEL = "openwebui-fleet.app"


def _env_map(envs: Any) -> dict[str, str]:
    if not isinstance(envs, list):
        return {}
    return dict(x.split("=", 1) for x in envs if isinstance(x, str) and _ENV_LINE.match(x))


def _persistent_config_warnings(diff: PlanDiff, before: dict[str, Registered], after: dict[str, Registered],
                                renamed: dict[str, str]) -> list[str]:
    """Changed variables of an existing app replica that Open WebUI reads from its database."""
    ignored: dict[str, set[str]] = {}
    for change in diff.changes:
        if change.type != CONTAINER or change.action not in ("replace", "update"):
            continue
        new_r = after[change.urn]
        labels = {item.get("label"): item.get("value") for item in new_r.inputs.get("labels") or []}
        app = labels.get(APP_LABEL)
        if app is None:
            continue
        old_r = before[renamed.get(change.urn, change.urn)]
        old_env, new_env = _env_map(old_r.inputs.get("envs")), _env_map(new_r.inputs.get("envs"))
        changed = {k for k in old_env.keys() | new_env.keys() if old_env.get(k) != new_env.get(k)}
        ignored.setdefault(app, set()).update(k for k in changed if saved_in_database(k, new_env))
    return [f"apps.{app}: {', '.join(sorted(names))} saved in the database (settingsFrom: adminUi): this change "
            f"will not take effect; change it in the admin UI, or set apps.{app}.settingsFrom: stack"
            for app, names in sorted(ignored.items()) if names]


def _short_type(type_: str) -> str:
    """`docker:index/container:Container` -> `docker:Container` (as wide as a table allows)."""
    if type_.startswith("pulumi:providers:"):
        return "provider:" + type_.rsplit(":", 1)[-1]
    package, _, rest = type_.partition(":")
    return f"{package}:{rest.rsplit(':', 1)[-1]}" if rest else type_


def render_diff(diff: PlanDiff) -> str:
    from plan.render import table  # the plan's table layout, one place
    head = f"Plan diff {diff.old_label} -> {diff.new_label}"
    if diff.error:
        return f"{head}: config rejected:\n  " + diff.error.replace("\n", "\n  ")
    n = diff.counts()
    out = [f"{head}: {n['create']} to create, {n['replace']} to replace, {n['update']} to update, "
           f"{n['delete']} to delete",
           "(custom resources, inputs compared under Pulumi's mock engine; component resources not counted)", ""]
    order = {"delete": 0, "replace": 1, "update": 2, "create": 3}
    rows = [(c.action, _short_type(c.type), c.name, c.node, ", ".join(c.keys) or "-", "; ".join(c.notes) or "")
            for c in sorted(diff.changes, key=lambda c: (order[c.action], c.node, c.type, c.name))]
    out.append(table(["action", "type", "name", "node", "changed inputs", "notes"], rows) if rows
               else "No resource changes.")
    notes = []
    if diff.blocked:
        notes.append(f"{len(diff.blocked)} protected resource(s) would be replaced or deleted: `pulumi up` stops "
                     "there until each is unprotected; decide that on purpose:")
        notes += [f"  pulumi state unprotect '{c.urn}'" for c in sorted(diff.blocked, key=lambda c: c.urn)]
    dbr = sorted(c.name for c in diff.of("replace") if c.delete_before_replace)
    if dbr:
        notes.append("Delete-before-replace (the old one is gone before the new one starts): " + ", ".join(dbr))
    if notes:
        out += ["", "Notes"] + [n if n.startswith(" ") else f"- {n}" for n in notes]
    if diff.warnings:
        out += ["", "Warnings"] + [f"- {w}" for w in diff.warnings]
    out += ["", f"{NGINX_OUTPUT}: " + ("unchanged" if not diff.nginx_diff else "\n" + diff.nginx_diff.rstrip())]
    if diff.firewall_diff is not None:
        out += ["", f"{FIREWALL_OUTPUT}: " + ("unchanged" if not diff.firewall_diff
                                              else "\n" + diff.firewall_diff.rstrip())]
    return "\n".join(out)


# ── replacement order ────────────────────────────────────────────────────────────────────────────

def replacement_order(old: Evaluation, new: Evaluation, urns: Iterable[str],
                      replaces: Callable[[str, str], bool] = forces_replacement) -> list[tuple[str, str]]:
    """One serialisation of the deletes and creates Pulumi runs to replace `urns` (old -> new).

    What this relies on (Pulumi docs, "Resource option: deleteBeforeReplace"; engine behaviour shown
    by pulumi/pulumi tests/integration/delete_before_create):
    1. A resource registers only after everything it depends on has finished its step: the SDK
       waits for their URNs, and the engine answers a registration once the step is done. So
       resources are processed in dependency order (ties: program order).
    2. Replacing a delete-before-replace resource R deletes, first, those dependents (old state,
       transitively) that must be replaced because one of their *inputs reads an output* of a
       resource being replaced and that input forces replacement ("can cascade to dependent
       resources" in the docs) - dependents first, in reverse dependency order - then R; then
       creates R. Dependents by `depends_on` alone are NOT deleted early: they stay up and are
       handled when they register themselves.
    3. Without delete-before-replace, the new resource is created first and the old one deleted
       at the end of the update, like resources removed from the program.
    Steps with no dependency path between them may run in parallel in a real update; only the
    order of steps connected by dependencies is guaranteed.
    """
    before, after = old.by_urn(), new.by_urn()
    replace_set = {u for u in urns if u in before and u in after}
    old_graph = waits_for(old.resources)
    old_topo = topological_order(old_graph)

    def dbr(urn: str) -> bool:
        r = after.get(urn) or before[urn]
        return r.delete_before_replace or r.type in DELETE_BEFORE_REPLACE_TYPES

    def must_replace(d: Registered, going: set[str]) -> bool:
        """Pulumi's dependent-replacement test: an input reading a replaced resource forces replace."""
        if not d.custom:
            return False
        if d.provider_urn in going:
            return True
        return any(replaces(d.type, key) for key, deps in d.property_dependencies.items()
                   if going.intersection(deps))

    cascade: dict[str, list[str]] = {}
    for urn in [u for u in old_topo if u in replace_set and dbr(u)]:
        going, found, later = {urn}, [], dependents(old_graph, urn)
        for d in old_topo:  # dependency order, so replacements found early count for later ones
            if d in later and must_replace(before[d], going):
                going.add(d)
                found.append(d)
        cascade[urn] = found
        replace_set.update(d for d in found if d in after)

    steps: list[tuple[str, str]] = []
    deleted: set[str] = set()
    delete_at_end: list[str] = []
    for urn in topological_order(waits_for(new.resources)):
        if urn not in before:
            if after[urn].custom:
                steps.append(("create", after[urn].name))
            continue
        if urn not in replace_set:
            continue
        if dbr(urn):
            if urn not in deleted:
                for d in reversed(cascade.get(urn, [])):
                    if d not in deleted:
                        steps.append(("delete", before[d].name))
                        deleted.add(d)
                steps.append(("delete", before[urn].name))
                deleted.add(urn)
            steps.append(("create", after[urn].name))
        else:
            steps.append(("create", after[urn].name))
            delete_at_end.append(urn)
    removed = [u for u in old_topo if u not in after and before[u].custom]
    for urn in reversed([u for u in old_topo if u in removed or u in delete_at_end]):
        steps.append(("delete", before[urn].name))
    return steps
