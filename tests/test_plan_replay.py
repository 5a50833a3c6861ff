"""The benchmark floor `plan.replay` registers exactly the graph the program did (else its ratio lies)."""
import pytest

from plan.engine import Evaluation, Registered, evaluate, evaluate_program
from plan.replay import replay_body


def _shape(r: Registered) -> tuple:
    return (r.type, r.name, r.parent, r.provider_urn, sorted(r.dependencies), r.protect,
            r.retain_on_delete, r.delete_before_replace, r.custom, r.raw_inputs)


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_the_replay_registers_the_same_resources_with_the_same_inputs_secrets_and_options(stack: str) -> None:
    ev = evaluate(stack)
    replayed: Evaluation = evaluate_program(stack, replay_body(ev), ev.config)
    assert replayed.error is None
    assert {r.urn: _shape(r) for r in replayed.resources} == {r.urn: _shape(r) for r in ev.resources}
