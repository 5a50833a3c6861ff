"""`python -m plan` and `plan diff` read stack files through one door: every file problem is one line
naming the file, the line and the fix; exit 0 ok, 1 bad config, 2 usage. Keys of other namespaces
pass through to the program as the Pulumi CLI passes them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plan.__main__ import main
from plan.engine import PROJECT_DIR, evaluate, read_stack_file, to_pulumi_config
from project_copy import commit_all, committed_copy

LOCAL = (PROJECT_DIR / "Pulumi.local.yaml").read_text()
HTTP_PORT = "    httpPort: 8080"
HTTP_PORT_LINE = LOCAL.splitlines().index(HTTP_PORT) + 1

# edit of Pulumi.local.yaml -> (line the message names, words of the fix)
BROKEN = {
    "a tab": (LOCAL.replace(HTTP_PORT, "\thttpPort: 8080"), HTTP_PORT_LINE, "replace the tab with spaces"),
    # libyaml takes a tab after the colon as space; the message is the same whichever parser PyYAML has.
    "a tab after a colon": (LOCAL.replace(HTTP_PORT, "    httpPort:\t8080"), HTTP_PORT_LINE,
                            "replace the tab with spaces"),
    "indented too deep": (LOCAL.replace(HTTP_PORT, "     httpPort: 8080"), HTTP_PORT_LINE,
                          "indent this line like the keys beside it"),
    "a duplicate key": (LOCAL.replace(HTTP_PORT, HTTP_PORT + "\n    httpPort: 8081"), HTTP_PORT_LINE + 1,
                        "given twice: keep one"),
    "an unclosed quote": (LOCAL.replace(HTTP_PORT, '    httpPort: "8080'), HTTP_PORT_LINE,
                          "add the closing quote"),
    "a key without a colon": (LOCAL.replace(HTTP_PORT, "    httpPort 8080"), HTTP_PORT_LINE,
                              "write 'key: value'"),
    "a mapping as a key": (LOCAL.replace(HTTP_PORT, "    ? {httpPort: 8080}\n    : 1"), HTTP_PORT_LINE,
                           "a key that is a mapping or a list: write a plain name before the ':'"),
}


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    lines = (out + err).strip().splitlines()
    assert len(lines) == 1, out + err
    return lines[0]


@pytest.mark.parametrize("problem", BROKEN)
def test_plan_names_the_file_the_line_and_the_fix_of_a_broken_stack_file(
        problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, line, fix = BROKEN[problem]
    broken = tmp_path / "Pulumi.local.yaml"
    broken.write_text(text)
    assert main(["local", "--config", str(broken)]) == 1
    message = _one_line(capsys)
    assert message.startswith(f"{broken}:{line}:"), message
    assert message.endswith(fix) or fix in message, message


@pytest.mark.parametrize("problem", BROKEN)
def test_plan_diff_says_the_same_one_line_for_either_side(
        problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, line, fix = BROKEN[problem]
    broken = tmp_path / "Pulumi.local.yaml"
    broken.write_text(text)
    good = str(PROJECT_DIR / "Pulumi.local.yaml")
    for args in (["--old", good, "--new", str(broken)], ["--old", str(broken), "--new", good]):
        assert main(["diff", "local", *args]) == 1
        message = _one_line(capsys)
        assert message.startswith(f"{broken}:{line}:") and fix in message, message


def test_a_stack_without_a_file_names_the_stacks_there_and_exits_1() -> None:
    for argv in (["staging"], ["diff", "staging", "--against-ref", "HEAD"]):
        result = subprocess.run([sys.executable, "-m", "plan", *argv], cwd=PROJECT_DIR,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1
        assert (result.stdout + result.stderr).strip() == (
            "Pulumi.staging.yaml: no such stack file (stacks here: local, prod): "
            "name one of those, or create Pulumi.staging.yaml")


def test_a_broken_stack_file_at_the_ref_is_named_with_the_ref(tmp_path: Path) -> None:
    repo = committed_copy(tmp_path / "project")
    (repo / "Pulumi.local.yaml").write_text(BROKEN["a tab"][0])
    commit_all(repo, "a tab in the stack file")
    (repo / "Pulumi.local.yaml").write_text(LOCAL)
    result = subprocess.run([sys.executable, "-m", "plan", "diff", "local", "--against-ref", "HEAD"], cwd=repo,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 1
    assert result.stdout.strip() == (f"HEAD:Pulumi.local.yaml:{HTTP_PORT_LINE}:1: a tab: YAML indents with "
                                     "spaces only, replace the tab with spaces")
    assert "Traceback" not in result.stderr


def test_a_usage_mistake_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["diff", "local"], ["local", "--no-such-option"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "Exit codes: 0 the plan (or diff) was printed; 1 a stack file" in capsys.readouterr().out
    readme = (PROJECT_DIR / "README.md").read_text()
    assert "exit 0 when they printed the plan or diff, 1 when a stack file" in readme


def test_keys_of_other_namespaces_reach_the_program_unprefixed_and_are_accepted(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.local.yaml"
    stack.write_text(LOCAL.replace("config:\n", "config:\n  aws:region: eu-central-1\n", 1))
    config = read_stack_file(stack)
    assert config["aws:region"] == "eu-central-1" and "nodes" in config
    values, _ = to_pulumi_config(config)
    assert values["aws:region"] == "eu-central-1" and "openwebui-fleet:nodes" in values
    assert "openwebui-fleet:aws:region" not in values
    assert evaluate("local", config).error is None


def test_plan_prints_every_config_mistake_on_its_own_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = tmp_path / "Pulumi.local.yaml"
    stack.write_text(LOCAL.replace(HTTP_PORT, '    httpPort: "abc"').replace("        local: 2", "        local: -1"))
    assert main(["local", "--config", str(stack)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "stack 'local': config rejected:",
        "  apps.chat.replicas.local: -1 is out of range: write a number from 1 to 100, e.g. local: 1",
        "  loadBalancer.httpPort: 'abc' is not a whole number: write one from 1 to 65535, e.g. httpPort: 80"]


def test_plan_diff_names_the_file_on_every_line_of_a_rejected_config(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    stack = tmp_path / "Pulumi.local.yaml"
    stack.write_text(LOCAL.replace(HTTP_PORT, '    httpPort: "abc"').replace("        local: 2", "        local: -1"))
    assert main(["diff", "local", "--old", str(PROJECT_DIR / "Pulumi.local.yaml"), "--new", str(stack)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(": config rejected:")
    assert lines[1:] == [
        f"  {stack}: apps.chat.replicas.local: -1 is out of range: write a number from 1 to 100, e.g. local: 1",
        f"  {stack}: loadBalancer.httpPort: 'abc' is not a whole number: write one from 1 to 65535, e.g. httpPort: 80"]


def test_a_stack_file_that_is_not_utf8_is_one_line_naming_the_file_and_the_fix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "Pulumi.local.yaml"
    broken.write_bytes(LOCAL.replace(HTTP_PORT, "    # caf\u00e9").encode("latin-1"))
    assert main(["local", "--config", str(broken)]) == 1
    message = _one_line(capsys)
    assert message.startswith(f"{broken}: not UTF-8 text (byte "), message
    assert message.endswith("save the file as UTF-8"), message
