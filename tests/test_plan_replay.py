"""The benchmark floor `plan.replay` registers exactly the graph the program did (else its ratio lies)."""
import pytest

from plan.engine import Evaluation, Registered, evaluate, evaluate_program
from plan.replay import _class_call, declared_properties, replay_body


def _shape(r: Registered) -> tuple:
    return (r.type, r.name, r.parent, r.provider_urn, sorted(r.dependencies), r.protect,
            r.retain_on_delete, r.delete_before_replace, r.custom, r.raw_inputs, r.aliases)


@pytest.mark.parametrize("mode", ["bare", "typed", "classes"])
@pytest.mark.parametrize("stack", ["local", "prod"])
def test_the_replay_registers_the_same_resources_with_the_same_inputs_secrets_and_options(
        stack: str, mode: str) -> None:
    ev = evaluate(stack)
    body = replay_body(ev, typed=mode == "typed", classes=mode == "classes")
    replayed: Evaluation = evaluate_program(stack, body, ev.config)
    assert replayed.error is None
    assert {r.urn: _shape(r) for r in replayed.resources} == {r.urn: _shape(r) for r in ev.resources}


def test_the_typed_replay_declares_what_the_provider_class_declares() -> None:
    # written out from pulumi_docker.Volume: the keys its __init__ puts in __props__ (inputs and outputs)
    assert set(declared_properties("docker:index/volume:Volume")) == {
        "cluster", "driver", "driverOpts", "labels", "mountpoint", "name"}
    assert "imageId" in declared_properties("docker:index/remoteImage:RemoteImage")
    assert "host" in declared_properties("pulumi:providers:docker")


def test_the_class_replay_calls_each_provider_class_with_its_python_arguments() -> None:
    import pulumi_aws
    import pulumi_docker

    ev = evaluate("prod")
    cls, kwargs = _class_call(ev.named("backups-s3"))
    # components/backup_bucket.py: the provider class gets Python values; it JSON-encodes them itself
    assert cls is pulumi_aws.Provider
    assert kwargs["skip_credentials_validation"] is True
    assert kwargs["endpoints"] == [{"s3": "https://fsn1.your-objectstorage.com"}]
    cls, kwargs = _class_call(ev.named("backups-lifecycle"))
    assert cls is pulumi_aws.s3.BucketLifecycleConfiguration
    assert kwargs["rules"][0]["abort_incomplete_multipart_upload"] == {"days_after_initiation": 1}
    cls, kwargs = _class_call(ev.of_type("docker:index/volume:Volume")[0])
    assert cls is pulumi_docker.Volume


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_the_cold_replay_prints_the_plan_the_program_prints(stack: str, tmp_path, capsys) -> None:
    """`python -m plan.replay` is the floor for `python -m plan`: the same page, stack outputs included."""
    from plan.engine import evaluation_to_json
    from plan.render import render_plan
    from plan.replay import main

    ev = evaluate(stack)
    dump = tmp_path / "ev.json"
    dump.write_text(evaluation_to_json(ev))
    assert main(["--classes", str(dump)]) == 0
    page, expected = capsys.readouterr().out, render_plan(ev) + "\n"
    assert page.splitlines()[0] == expected.splitlines()[0]  # the resource count
    assert page.split("\nOutputs\n")[1] == expected.split("\nOutputs\n")[1]
