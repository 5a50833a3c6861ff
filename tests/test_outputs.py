"""Stack outputs a person reads with `pulumi stack output`: the URLs first, nothing that floods the table."""
from __future__ import annotations

from plan.engine import Evaluation
from plan.render import render_plan


def test_app_urls_come_first_and_give_each_apps_url(local: Evaluation, prod: Evaluation) -> None:
    # The CLI lists outputs sorted by name (pulumi/pulumi printStackOutputs: sort.Strings).
    assert sorted(local.outputs)[0] == sorted(prod.outputs)[0] == "appUrls"
    # From the stack files: local has nginx on httpPort 8080 without TLS; prod has TLS on the default 443.
    assert local.outputs["appUrls"] == {"chat": "http://chat.localhost:8080"}
    assert prod.outputs["appUrls"] == {"chat": "https://chat.example.com", "research": "https://research.example.com"}


def test_no_output_is_a_multi_line_text_and_the_nginx_conf_sits_under_lb(stack: Evaluation) -> None:
    assert [name for name, value in stack.outputs.items() if isinstance(value, str) and "\n" in value] == []
    assert "lbNginxConf" not in stack.outputs
    conf = stack.outputs["lb"]["nginxConf"]
    assert conf.startswith("# Rendered by openwebui-fleet") and "upstream app_chat {" in conf


def test_the_plan_lists_outputs_as_the_cli_does_with_the_urls_on_top(local: Evaluation) -> None:
    outputs = render_plan(local).split("\nOutputs\n", 1)[1].splitlines()
    assert outputs[0] == "appUrls: {chat: 'http://chat.localhost:8080'}"
    assert outputs[1:3] == ["apps:", "  chat:"]
    assert "  nginxConf: |" in outputs
