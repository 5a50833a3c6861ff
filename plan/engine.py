"""Evaluate the real `__main__.py` for a stack under Pulumi's mock runtime.

This is what `pulumi preview` would register, without the CLI, credentials or SSH: every resource
with its inputs, parent, provider, dependencies and options, and the stack outputs. The tests ask
questions of an `Evaluation`; `python -m plan` prints one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import json
import runpy
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import known_types, rpc
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.settings import get_root_resource

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT = "openwebui-fleet"
SECRET_SIG = rpc._special_sig_key  # "4dabf18193072939515e22adb298388d" marks a secret value
_SECRET_MARK = "1b47061264138c4ac30d75fd1eb44270"
GENERATED_PREFIX = "MOCK-GENERATED-SECRET-"

# Resource type tokens the plan, the diff and the tests look for.
CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
IMAGE = "docker:index/remoteImage:RemoteImage"
DOCKER_PROVIDER = "pulumi:providers:docker"
COMMAND = "command:remote:Command"
BUCKET = "aws:s3/bucket:Bucket"


class DuplicateKeyLoader(yaml.SafeLoader):
    """YAML loader that refuses a key given twice (PyYAML silently keeps the last)."""


class _KeyError(yaml.constructor.ConstructorError):
    """A key the loader refuses; its problem is already the one-line fix."""


def _no_duplicates(loader: DuplicateKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key_node, yaml.ScalarNode):
            raise _KeyError(None, None, "a key that is a mapping or a list: write a plain name before the ':'",
                            key_node.start_mark)
        if key in seen:
            raise _KeyError(None, None, f"key '{key}' is given twice: keep one", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


DuplicateKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


class _FastDuplicateKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same loader on libyaml's parser, when PyYAML has it: a file it rejects is read again by
    `DuplicateKeyLoader`, whose messages `_YAML_FIXES` knows. Not for a file with a tab: libyaml takes
    some tabs (after a colon, in a value) that the pure loader refuses with the tab message."""


_FastDuplicateKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


class StackFileError(Exception):
    """A stack file that cannot be read; str() is one line naming the file, the line and the fix."""


# PyYAML's problem → what to do about it (anything else: the generic hint below).
_YAML_FIXES = {
    "found character '\\t' that cannot start any token":
        "a tab: YAML indents with spaces only, replace the tab with spaces",
    "mapping values are not allowed here":
        "a 'key:' where none can start: indent this line like the keys beside it "
        "(or quote a value that holds ': ')",
    "could not find expected ':'": "a key without ':': write 'key: value', indented like the keys beside it",
    "found unexpected end of stream": "a quoted value is never closed: add the closing quote",
    "did not find expected key": "indent this line like the keys beside it (spaces, the same number for each)",
    "expected <block end>, but found '<block mapping start>'":
        "this line is indented differently from the keys beside it: give it the same number of spaces",
    "expected ',' or ']', but got ':'": "a '[' list is not closed: close it with ']' on the line it starts",
    "expected ',' or '}', but got ':'": "a '{' mapping is not closed: close it with '}' on the line it starts",
}
# Contexts whose start, not where the parser gave up, is the line to fix (an unclosed quote or bracket).
_STARTED_AT = {"while scanning a simple key", "while scanning a quoted scalar",
               "while parsing a flow sequence", "while parsing a flow mapping"}


def read_stack_file(path: Path, label: str | None = None) -> dict[str, Any]:
    """The `config:` of a Pulumi.<stack>.yaml, keys of this project without its prefix (keys of other
    namespaces, like `aws:region`, as written). Raises StackFileError; `label` names the file in it."""
    label = label or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        stacks = sorted(f.name.removeprefix("Pulumi.").removesuffix(".yaml")
                        for f in path.parent.glob("Pulumi.*.yaml"))
        raise StackFileError(f"{label}: no such stack file (stacks here: {', '.join(stacks) or 'none'}): "
                             f"name one of those, or create {path.name}") from None
    except OSError as e:
        raise StackFileError(f"{label}: cannot be read ({e.strerror}): check the path and its permissions") from None
    except UnicodeDecodeError as e:
        raise StackFileError(f"{label}: not UTF-8 text (byte {e.start}): save the file as UTF-8") from None
    return parse_stack_text(text, label)


def parse_stack_text(text: str, label: str = "stack file") -> dict[str, Any]:
    """`read_stack_file` for text that is not a file here (e.g. `git show REF:Pulumi.prod.yaml`)."""
    try:
        try:
            data = yaml.load(text, Loader=DuplicateKeyLoader if "\t" in text else _FastDuplicateKeyLoader)
        except yaml.YAMLError:
            data = yaml.load(text, Loader=DuplicateKeyLoader)
    except yaml.MarkedYAMLError as e:
        raise StackFileError(_yaml_message(e, label, text)) from None
    except yaml.YAMLError as e:
        raise StackFileError(f"{label}: not valid YAML ({e}): check its indentation and quoting") from None
    data = {} if data is None else data
    config = data.get("config") if isinstance(data, dict) else data
    if not isinstance(config, dict | None):
        raise StackFileError(f"{label}: the file must be a mapping with the stack's keys under 'config:' "
                             f"(see Pulumi.local.yaml)")
    return {k.removeprefix(f"{PROJECT}:"): v for k, v in (config or {}).items()}


def _yaml_message(error: yaml.MarkedYAMLError, label: str, text: str = "") -> str:
    problem = error.problem or error.context or "not valid YAML"
    # Where a construct started (an unclosed quote, a key without ':') is where the mistake is.
    mark = error.context_mark if error.context in _STARTED_AT and error.context_mark else error.problem_mark
    where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark is not None else label
    if isinstance(error, _KeyError):
        return f"{where}: {problem}"
    if problem not in _YAML_FIXES and mark is not None and (opened := _unclosed_quote(text, mark.line)) is not None:
        # A quote left open runs on to the next quote in the file; the parser gives up far below.
        return f"{label}:{opened + 1}:1: {_YAML_FIXES['found unexpected end of stream']}"
    fix = _YAML_FIXES.get(problem, f"not valid YAML ({problem}): check the indentation (spaces) and quoting "
                                   "on this line and the one before")
    return f"{where}: {fix}"


def _unclosed_quote(text: str, before: int) -> int | None:
    """The first line above `before` with an odd number of double quotes (comments aside), if any."""
    for number, line in enumerate(text.splitlines()[:before + 1]):
        code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        if code.replace('\\"', "").count('"') % 2:
            return number
    return None


def stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The stack file `Pulumi.<stack>.yaml` in `project_dir`; raises StackFileError."""
    return read_stack_file(project_dir / f"Pulumi.{stack}.yaml", f"Pulumi.{stack}.yaml")


def _replace_secure(key: str, value: Any) -> tuple[Any, bool]:
    """Swap every `secure:` value for a marked placeholder; report whether there was one."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return f"mock-secret:{key}", True
    if isinstance(value, dict):
        pairs = {k: _replace_secure(f"{key}.{k}", v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_replace_secure(f"{key}[{i}]", v) for i, v in enumerate(value)]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


@dataclass
class Registered:
    urn: str
    type: str
    name: str
    raw_inputs: dict[str, Any]   # as the engine receives them: secrets still wrapped
    state: dict[str, Any]        # inputs plus what the (mock) provider computed
    parent: str
    provider: str
    dependencies: list[str]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    custom: bool
    # input key -> URNs whose outputs that input reads (what `pulumi preview` cascades on)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    # `aliases` as registered: {"urn": ...} or a spec {"name", "type", "parentUrn", "noParent"}
    aliases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def inputs(self) -> dict[str, Any]:
        return unwrap(self.raw_inputs)

    @property
    def provider_urn(self) -> str:
        return self.provider.rsplit("::", 1)[0] if self.provider else ""


@dataclass
class Evaluation:
    stack: str
    config: dict[str, Any]
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    generated_secrets: list[str] = field(default_factory=list)
    error: str | None = None
    _by_urn: dict[str, Registered] | None = field(default=None, repr=False, compare=False)

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str, type_: str | None = None) -> Registered:
        found = [r for r in self.resources if r.name == name and (type_ is None or r.type == type_)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r} of type {type_}")
        return found[0]

    def by_urn(self) -> dict[str, Registered]:
        """Resources by URN, built once (callers ask per resource; rebuilding each time is quadratic)."""
        if self._by_urn is None or len(self._by_urn) != len(self.resources):
            self._by_urn = {r.urn: r for r in self.resources}
        return self._by_urn


def evaluation_to_json(ev: Evaluation) -> str:
    """An evaluation as JSON, to hand it from one process to another (see plan/at_ref.py)."""
    data = {f.name: getattr(ev, f.name) for f in dataclasses.fields(ev) if f.compare}
    data["resources"] = [dataclasses.asdict(r) for r in ev.resources]
    data["secret_outputs"] = sorted(ev.secret_outputs)
    return json.dumps(data, default=str)


def evaluation_from_json(text: str) -> Evaluation:
    data = json.loads(text)
    data["resources"] = [Registered(**r) for r in data["resources"]]
    data["secret_outputs"] = set(data["secret_outputs"])
    return Evaluation(**data)


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == _SECRET_MARK


def unwrap(value: Any) -> Any:
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


class _Mocks(pulumi.runtime.Mocks):
    """Fills in what providers compute; generated secrets are recognisable so tests can trace them."""

    def __init__(self, generated: list[str]) -> None:
        self.generated = generated
        # resource name -> the name it was renamed from (an alias): the engine keeps its state
        self.renamed_from: dict[str, str] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        if args.typ in ("random:index/randomPassword:RandomPassword", "random:index/randomString:RandomString"):
            # Named after the resource: the same program gives the same value in every evaluation, and
            # an aliased rename keeps it (the engine carries the state over, not a new password).
            value = f"{GENERATED_PREFIX}{self.renamed_from.get(args.name, args.name)}"
            self.generated.append(value)
            state["result"] = value
        elif args.typ == "tls:index/privateKey:PrivateKey":
            value = f"{GENERATED_PREFIX}{self.renamed_from.get(args.name, args.name)}"
            self.generated.append(value)
            state["privateKeyPem"] = state["privateKeyPemPkcs8"] = value
        elif args.typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
            state["certPem"] = f"-----BEGIN CERTIFICATE-----\n(mock: {args.name})\n-----END CERTIFICATE-----\n"
        elif args.typ == "tls:index/certRequest:CertRequest":
            state["certRequestPem"] = f"-----BEGIN CERTIFICATE REQUEST-----\n(mock: {args.name})\n-----END CERTIFICATE REQUEST-----\n"
        elif args.typ == IMAGE:
            state["imageId"] = "sha256:" + hashlib.sha256(args.inputs["name"].encode()).hexdigest()
            state["repoDigest"] = f"{args.inputs['name'].split(':')[0]}@{state['imageId']}"
        elif args.typ == NETWORK:
            state.setdefault("name", args.name)
        elif args.typ == BUCKET:
            state.setdefault("bucket", args.name)
            state["arn"] = f"arn:aws:s3:::{state['bucket']}"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


class _Monitor(pulumi_mocks.MockMonitor):
    """Keeps what MockResourceArgs leaves out: parent, provider, dependencies and options."""

    def __init__(self, mocks: _Mocks, into: list[Registered]) -> None:
        super().__init__(mocks)
        self.into = into

    def RegisterResource(self, request: Any) -> Any:
        earlier = [a.spec.name for a in request.aliases if a.WhichOneof("alias") == "spec" and a.spec.name]
        if earlier:
            self.mocks.renamed_from[request.name] = earlier[0]
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.into.append(Registered(
                urn=response.urn, type=request.type, name=request.name,
                raw_inputs=rpc.deserialize_properties(request.object, keep_internal=False) or {},
                state=unwrap(rpc.deserialize_properties(response.object, keep_internal=False) or {}),
                parent=request.parent, provider=request.provider,
                dependencies=list(request.dependencies), protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                delete_before_replace=bool(request.deleteBeforeReplace), custom=bool(request.custom),
                property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                aliases=[_alias(a) for a in request.aliases]))
        return response


def _alias(alias: Any) -> dict[str, Any]:
    if alias.WhichOneof("alias") == "urn":
        return {"urn": alias.urn}
    spec = alias.spec
    return {"name": spec.name, "type": spec.type, "parentUrn": spec.parentUrn, "noParent": spec.noParent}


def to_pulumi_config(config: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Stack-file values → the string map the engine hands a program, plus the secret keys."""
    values, secret_keys = {}, []
    for key, value in config.items():
        value, secret = _replace_secure(key, value)
        full = key if ":" in key else f"{PROJECT}:{key}"  # other namespaces (aws:region) as the CLI passes them
        values[full] = value if isinstance(value, str) else json.dumps(value)
        if secret:
            secret_keys.append(full)
    return values, secret_keys


def evaluate(stack: str, config: dict[str, Any] | None = None, *,
             project_dir: Path = PROJECT_DIR, preview: bool = False) -> Evaluation:
    """Run `__main__.py` for `stack` (its stack file, or `config` instead) under the mock engine."""
    config = stack_config(stack, project_dir) if config is None else config
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    return evaluate_program(stack, lambda: runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__"),
                            config, preview=preview)


def evaluate_program(stack: str, body: Callable[[], Any], config: dict[str, Any] | None = None, *,
                     preview: bool = False) -> Evaluation:
    """Run `body` as the Pulumi program under the same mock engine (e.g. a bare-SDK benchmark)."""
    config = {} if config is None else config
    result = Evaluation(stack=stack, config=config)
    mocks = _Mocks(result.generated_secrets)
    # set_mocks keeps a root stack from an earlier evaluation in this process, with that stack's name
    # in its URN and its exports as this one's outputs: each evaluation starts from a new root.
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview,
                             monitor=_Monitor(mocks, result.resources))
    values, secret_keys = to_pulumi_config(config)
    pulumi.runtime.set_all_config(values, secret_keys)

    @pulumi.runtime.test
    def program() -> Any:
        try:
            body()
        except pulumi.RunError as e:  # a config mistake: Pulumi would print just this message
            result.error = str(e)
            return None
        outputs: dict[str, pulumi.Output[Any]] = dict(get_root_resource().outputs)
        return pulumi.Output.from_input(_collect(outputs, result))

    with paused_gc(), acyclic_contains_unknowns():
        program()
    return result


def contains_unknowns(value: Any) -> bool:
    """`pulumi.runtime.rpc.contains_unknowns` without its recursive closure.

    The SDK's version defines a recursive `impl` on every call, a function that holds itself through
    its closure: each call leaves a cycle only the garbage collector frees. The SDK calls it for every
    Output's value, 232,000 times at 1,000 replicas: a third of an evaluation's memory and half of the
    objects the collection afterwards frees were these closures (benchmarks/scale_bench.py).
    The same answer: whether any value, in nested dicts and lists, is unknown (each object looked at once).
    """
    pending, seen = [value], set()
    while pending:
        item = pending.pop()
        if known_types.is_unknown(item):
            return True
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


@contextlib.contextmanager
def acyclic_contains_unknowns() -> Iterator[None]:
    """The SDK uses `contains_unknowns` above while a program is evaluated here (pulumi.Output and the
    RPC layer look it up on `rpc` at each call); its own version is put back afterwards."""
    sdk_version = rpc.contains_unknowns
    rpc.contains_unknowns = contains_unknowns
    try:
        yield
    finally:
        rpc.contains_unknowns = sdk_version


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No garbage collection while a program registers resources.

    The SDK keeps every Output, future and lock of an evaluation alive until it ends, so each full
    collection rescans all of them: at 1,000 replicas half the time went to collections that freed
    nothing (benchmarks/scale_bench.py). Cycles made meanwhile are collected once, afterwards.
    What existed before is frozen as it is, not collected first: a full collection of a heap holding
    pulumi and the providers costs more than a prod-sized evaluation saves by pausing.
    """
    enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


async def _collect(outputs: dict[str, pulumi.Output[Any]], result: Evaluation) -> None:
    for name, output in outputs.items():
        output = pulumi.Output.from_input(output)
        result.outputs[name] = await output.future(with_unknowns=True)
        if await output.is_secret():
            result.secret_outputs.add(name)
