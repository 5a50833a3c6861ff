"""A replaced resource's outputs are unknown in `pulumi preview`: every input reading them changes, and the
reader is replaced or updated as that input's own schema says; transitively."""
from __future__ import annotations

import pulumi

from plan.diff import diff_evaluations
from plan.engine import Evaluation, evaluate_program


def _program(image: str) -> Evaluation:
    def body() -> None:
        def container(resource: str, opts: pulumi.ResourceOptions | None = None,
                      **props: object) -> pulumi.CustomResource:
            return pulumi.CustomResource("docker:index/container:Container", resource, props, opts)
        base = container("base", image=image, name="base")
        # A label is ForceNew for a docker container; `restart` is applied in place (docker update).
        labelled = container("labelled", image="x:1", name="labelled", labels=[{"label": "id", "value": base.id}])
        container("restart-only", image="x:1", name="restart-only", restart=base.id.apply(lambda _: "always"))
        container("second-hand", image="x:1", name="second-hand", labels=[{"label": "id", "value": labelled.id}])
        container("by-name", image="x:1", name="by-name", labels=[{"label": "base", "value": "base"}],
                  opts=pulumi.ResourceOptions(depends_on=[base]))
    return evaluate_program("cascade", body)


def test_readers_of_a_replaced_resource_are_replaced_or_updated_by_their_inputs_schema() -> None:
    diff = diff_evaluations(_program("x:1"), _program("x:2"))
    assert diff.names("replace") == {"base", "labelled", "second-hand"}
    assert diff.names("update") == {"restart-only"}
    # depends_on alone reads no output: nothing of it is unknown.
    assert "by-name" not in {c.name for c in diff.changes}
    (second,) = [c for c in diff.changes if c.name == "second-hand"]
    assert second.replace_keys == ("labels",) and second.notes[0] == "reads replaced labelled"


def test_an_unchanged_program_has_no_cascade() -> None:
    assert diff_evaluations(_program("x:1"), _program("x:1")).changes == []
