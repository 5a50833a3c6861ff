"""The benchmark floor `plan.replay` registers exactly the graph the program did (else its ratio lies)."""
import pytest

from plan.engine import Evaluation, Registered, evaluate, evaluate_program
from plan.replay import declared_properties, replay_body


def _shape(r: Registered) -> tuple:
    return (r.type, r.name, r.parent, r.provider_urn, sorted(r.dependencies), r.protect,
            r.retain_on_delete, r.delete_before_replace, r.custom, r.raw_inputs)


@pytest.mark.parametrize("typed", [False, True])
@pytest.mark.parametrize("stack", ["local", "prod"])
def test_the_replay_registers_the_same_resources_with_the_same_inputs_secrets_and_options(
        stack: str, typed: bool) -> None:
    ev = evaluate(stack)
    replayed: Evaluation = evaluate_program(stack, replay_body(ev, typed=typed), ev.config)
    assert replayed.error is None
    assert {r.urn: _shape(r) for r in replayed.resources} == {r.urn: _shape(r) for r in ev.resources}


def test_the_typed_replay_declares_what_the_provider_class_declares() -> None:
    # written out from pulumi_docker.Volume: the keys its __init__ puts in __props__ (inputs and outputs)
    assert set(declared_properties("docker:index/volume:Volume")) == {
        "cluster", "driver", "driverOpts", "labels", "mountpoint", "name"}
    assert "imageId" in declared_properties("docker:index/remoteImage:RemoteImage")
    assert "host" in declared_properties("pulumi:providers:docker")
