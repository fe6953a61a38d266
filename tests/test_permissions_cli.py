"""The Bash bypasses of issue 13, end to end: a real `covey -p` run, a scripted model, real
bash. Nothing the rules forbid happens, and each refusal is in `permission_denials`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from clitools import covey

DISGUISED_RM = ["/bin/rm victim", "command rm victim", "bash -c 'rm victim'", "FOO=1 rm victim"]
DISGUISED_RM += ["env rm victim", "\\rm victim", 'r""m victim', "{ rm victim; }"]
DISGUISED_RM += ["if true; then rm victim; fi", "timeout 5 rm victim", "nohup rm victim"]
DISGUISED_RM += ["exec rm victim"]


def run(repo: Path, commands: list[str], *args: str) -> dict[str, Any]:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "Bash", "input": {"command": c}}]} for c in commands
    ]
    script = repo.parent / "script.yaml"
    script.write_text(yaml.safe_dump({"turns": [*turns, {"text": "done"}]}))
    result = covey(
        "-p", "go", "--model", f"scripted:{script}", "--output-format", "json", *args, cwd=repo
    )
    assert result.code == 0, result.err
    return result.json()


def test_a_rm_deny_holds_against_every_disguise_in_bypass_mode(git_repo: Path) -> None:
    (git_repo / "victim").write_text("still here\n")
    out = run(
        git_repo,
        DISGUISED_RM,
        "--permission-mode",
        "bypassPermissions",
        "--disallowedTools",
        "Bash(rm:*)",
    )
    assert (git_repo / "victim").read_text() == "still here\n"
    denied = [d["tool_input"]["command"] for d in out["permission_denials"]]
    assert denied == DISGUISED_RM


def test_a_comment_cannot_smuggle_a_command_past_an_echo_rule(
    git_repo: Path, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    attack = f"echo x #'\ntouch {tmp_path}/elsewhere/f\n#'"
    out = run(git_repo, [attack, "echo fine"], "--allowedTools", "Bash(echo:*)")
    assert not (tmp_path / "elsewhere" / "f").exists()
    assert [d["tool_input"]["command"] for d in out["permission_denials"]] == [attack]
