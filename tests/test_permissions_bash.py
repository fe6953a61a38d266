"""Bash permission rules read the command with a real shell grammar: every simple command
anywhere in the line, wrappers looked through, files written by redirection checked as edits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from covey.tools import BashTool
from covey.tools.permissions import PermissionPolicy
from covey.tools.shell import analyze_command

BASH = BashTool()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "repo"
    (project / ".git").mkdir(parents=True)
    (project / "protected").mkdir()
    return project.resolve()


def policy(root: Path, mode: str = "default", **rules: list[str]) -> PermissionPolicy:
    return PermissionPolicy(
        mode, rules.get("allow", []), rules.get("ask", []), rules.get("deny", []), root, root
    )


def decide(p: PermissionPolicy, command: str) -> str:
    return p.decide(BASH, {"command": command}).behavior


# The bypasses issue 13 found against a deny `Bash(rm:*)` in bypassPermissions, and more of
# the same kind.
RM_IN_DISGUISE = [
    "/bin/rm f",
    "command rm f",
    "bash -c 'rm f'",
    "FOO=1 rm f",
    "env rm f",
    "\\rm f",
    'r""m f',
    "{ rm f; }",
    "if true; then rm f; fi",
    "timeout 5 rm f",
    "nohup rm f",
    "exec rm f",
    "sudo -u root rm f",
    "env -i FOO=1 /usr/bin/rm f",
    "nice -n 5 rm f",
    "time rm f",
    "builtin command rm f",
    "ls | xargs rm",
    "stdbuf -oL rm f",
    "eval 'rm f'",
    "sh -c \"bash -c 'rm f'\"",
    "zsh -lc 'rm f'",
    "env -S 'rm f'",
    "trap 'rm f' EXIT",
    "find . -name '*.o' -exec rm {} +",
    "echo $(rm f)",
    "echo `rm f`",
    "cat <(rm f)",
    "cat <<EOF\n$(rm f)\nEOF",
    "(cd sub && rm f)",
    "while true; do rm f; done",
    "for x in a; do rm $x; done",
    "case a in a) rm f;; esac",
    "f() { rm f; }",
    "! rm f",
    "echo ok && rm f",
    "echo ok\nrm f",
    "x=$(rm f)",
    "export A=$(rm f)",
]


@pytest.mark.parametrize("command", RM_IN_DISGUISE)
def test_a_deny_rule_sees_through_every_disguise(root: Path, command: str) -> None:
    assert decide(policy(root, "bypassPermissions", deny=["Bash(rm:*)"]), command) == "deny"


@pytest.mark.parametrize("command", RM_IN_DISGUISE)
def test_an_allow_rule_for_echo_does_not_let_rm_through(root: Path, command: str) -> None:
    p = policy(root, allow=["Bash(echo:*)", "Bash(true)", "Bash(ls)", "Bash(cat:*)"])
    assert decide(p, command) == "ask"


def test_a_comment_cannot_hide_a_command(root: Path, tmp_path: Path) -> None:
    """`#'` starts a comment: the quote opens nothing, and the touch on the next line runs."""
    command = f"echo x #'\ntouch {tmp_path}/elsewhere/f\n#'"
    d = policy(root, allow=["Bash(echo:*)"]).decide(BASH, {"command": command})
    assert d.behavior == "ask"
    (tmp_path / "elsewhere").mkdir()
    subprocess.run(["bash", "-c", command], check=True, capture_output=True)
    assert (tmp_path / "elsewhere" / "f").exists()  # bash really runs it


@pytest.mark.parametrize(
    "command",
    ["$CMD f", "$(echo rm) f", "`echo rm` f", 'eval "$X"', "echo rm f | bash", "/bin/r? f"],
)
def test_a_program_not_known_statically_asks(root: Path, command: str) -> None:
    everything_but_bare = policy(root, allow=["Bash(echo:*)", "Bash(rm:*)", "Bash(eval:*)"])
    d = everything_but_bare.decide(BASH, {"command": command})
    assert d.behavior == "ask"
    assert "not known statically" in d.reason or "expansion" in d.reason or "stdin" in d.reason
    bypass = policy(root, "bypassPermissions", deny=["Bash(rm:*)"])
    assert bypass.decide(BASH, {"command": command}).behavior == "ask"
    assert "deny rules cannot be checked" in bypass.decide(BASH, {"command": command}).reason
    assert decide(policy(root, "bypassPermissions"), command) == "allow"
    assert decide(policy(root, allow=["Bash"]), command) == "allow"
    assert decide(policy(root, "dontAsk", allow=["Bash(echo:*)"]), command) == "deny"


def test_a_line_the_grammar_cannot_read_asks(root: Path) -> None:
    p = policy(root, allow=["Bash(echo:*)"])
    d = p.decide(BASH, {"command": "echo {a,b} y )"})
    assert d.behavior == "ask" and "could not be parsed" in d.reason


@pytest.mark.parametrize(
    ("rule", "command", "allowed"),
    [
        ("Bash(git log:*)", "git log --oneline", True),
        ("Bash(git log:*)", "git logx", False),
        ("Bash(git log:*)", "/usr/bin/git log", False),  # allow rules do not take a basename
        ("Bash(npm test)", "npm test", True),
        ("Bash(npm test)", "npm test --watch", False),
        ("Bash(npm test)", "timeout 60 npm test", True),
        ("Bash(npm test)", "nohup nice npm test", True),
        ("Bash(npm test)", "FOO=1 npm test", False),  # a variable can change what runs
        ("Bash(FOO=1 npm test)", "FOO=1 npm test", True),
        ("Bash(npm test)", "bash -c 'npm test'", True),
        ("Bash(git commit *)", 'git commit -m "a; rm -rf x"', True),
        ("Bash(git commit *)", 'git commit -m "$(rm -rf x)"', False),
        ("Bash(echo *)", "echo 'a' \"b\" c", True),
        ("Bash(echo a b)", "echo 'a' \"b\"", True),  # after quote removal
        ("Bash(ls *)", "[ -d x ] && ls x", True),  # a test runs no program
        ("Bash(./run.sh)", "./run.sh", True),
        ("Bash(find *)", "find . -exec rm {} ;", False),  # the -exec command needs its own
    ],
)
def test_rule_syntax_keeps_its_meaning(root: Path, rule: str, command: str, allowed: bool) -> None:
    assert decide(policy(root, allow=[rule]), command) == ("allow" if allowed else "ask")


def test_a_deny_rule_also_matches_by_basename_and_wrapper(root: Path) -> None:
    assert decide(policy(root, deny=["Bash(git push:*)"]), "/usr/bin/git push") == "deny"
    assert decide(policy(root, deny=["Bash(sudo:*)"]), "sudo ls") == "deny"
    assert decide(policy(root, deny=["Bash(bash:*)"]), "bash -c 'ls'") == "deny"
    assert decide(policy(root, ask=["Bash(git push:*)"]), "timeout 9 git push") == "ask"


# --- writes ------------------------------------------------------------------------------


def test_redirections_are_edits_of_their_target(root: Path, tmp_path: Path) -> None:
    p = policy(root, allow=["Bash(echo:*)", "Bash(cd:*)"])
    assert decide(p, "echo x > out.txt 2>&1") == "allow"
    assert decide(p, "echo x >> sub/log.txt") == "allow"
    assert decide(p, "echo x > /dev/null") == "allow"
    d = p.decide(BASH, {"command": f"echo x > {tmp_path}/elsewhere"})
    assert d.behavior == "ask" and "outside the workspace" in d.reason
    assert decide(p, f"echo x | tee -a {tmp_path}/f") == "ask"
    assert decide(p, f"echo x &> {tmp_path}/f") == "ask"
    assert decide(p, f"echo x >& {tmp_path}/f") == "ask"
    assert decide(p, "echo x > ~/f") == "ask"
    assert decide(p, "echo x > $OUT") == "ask"
    assert decide(p, "cd /etc && echo x > passwd") == "ask"  # relative after cd: unknown
    assert decide(p, f"bash -c 'echo x > {tmp_path}/f'") == "ask"
    outside = policy(root, allow=["Bash(echo:*)", f"Edit(/{tmp_path}/out/**)"])
    assert decide(outside, f"echo x > {tmp_path}/out/f") == "allow"


def test_edit_rules_apply_to_redirections(root: Path) -> None:
    deny = policy(root, "bypassPermissions", deny=["Edit(protected/**)"])
    d = deny.decide(BASH, {"command": "echo x > protected/a"})
    assert (d.behavior, d.rule) == ("deny", "Edit(protected/**)")
    assert "writes protected/a" in d.reason
    assert decide(deny, "cat a | tee protected/b") == "deny"
    assert decide(deny, "echo x > ./protected/../protected/c") == "deny"
    assert decide(deny, "echo x > $F") == "ask"  # cannot tell: asks even in bypass
    assert decide(deny, "echo x > elsewhere") == "allow"
    ask = policy(root, allow=["Bash"], ask=["Write(protected/**)"])
    assert decide(ask, "echo x > protected/a") == "ask"


def test_writes_into_protected_folders_ask_in_every_mode_but_bypass(root: Path) -> None:
    for mode in ("default", "acceptEdits"):
        p = policy(root, mode, allow=["Bash"])
        d = p.decide(BASH, {"command": "echo x > .claude/agents/helper.md"})
        assert d.behavior == "ask" and ".claude" in d.reason
        assert decide(p, "echo x >> .git/hooks/pre-commit") == "ask"
        assert decide(p, "cat a | tee .covey/settings.json") == "ask"
    assert decide(policy(root, "dontAsk", allow=["Bash"]), "echo > .git/config") == "deny"
    assert decide(policy(root, "bypassPermissions"), "echo > .git/config") == "allow"
    named = policy(root, allow=["Bash", "Edit(.claude/agents/**)"])
    assert decide(named, "echo x > .claude/agents/helper.md") == "allow"


# --- the parser --------------------------------------------------------------------------


def test_analysis_of_a_compound_line() -> None:
    a = analyze_command("FOO=1 timeout 5 /bin/rm -f 'a b' && echo \"$(ls)\" > out | tee -a log")
    texts = sorted(c.text for c in a.commands)
    assert texts == sorted(["FOO=1 /bin/rm -f a b", 'echo "$(ls)"', "ls", "tee -a log"])
    rm = next(c for c in a.commands if "rm" in c.text)
    assert "rm -f a b" in rm.forms and "timeout 5 /bin/rm -f a b" in rm.forms
    assert a.writes == ["out", "log"]
    assert a.dynamic == []


def test_tree_sitter_is_imported_only_when_a_command_is_checked() -> None:
    """The grammar costs ~0.1 s to load; `covey --help` must not pay it (see bench/)."""
    code = "import covey.tools, covey.tools.permissions, sys; print('tree_sitter' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_very_long_line_is_checked_without_recursion_limits(root: Path) -> None:
    p = policy(root, allow=["Bash(echo:*)"])
    assert decide(p, " && ".join(["echo x"] * 3000)) == "allow"
    assert decide(p, " && ".join(["echo x"] * 3000) + " && rm f") == "ask"


def test_text_the_grammar_leaves_out_of_the_tree_asks(root: Path) -> None:
    """tree-sitter-bash drops the `-` of `python3 - <<EOF` without reporting an error; text
    that no token covers could be a command nobody checked, so the line asks."""
    p = policy(root, allow=["Bash(python3:*)", "Bash(cat:*)"])
    assert decide(p, "python3 - <<EOF\nprint(1)\nEOF") == "ask"
    assert decide(p, "python3 <<EOF\nprint(1)\nEOF") == "allow"
    assert decide(p, "cat > notes.md <<'EOF'\nliteral $(rm x)\nEOF") == "allow"
    assert decide(p, "cat > notes.md <<EOF\nexpanded $(rm x)\nEOF") == "ask"


def test_coproc_is_not_known_statically(root: Path) -> None:
    """The grammar reads `coproc N { rm x; }` as one command `coproc N { rm x`."""
    assert (
        decide(policy(root, "bypassPermissions", deny=["Bash(rm:*)"]), "coproc N { rm x; }")
        == "ask"
    )
    assert (
        decide(policy(root, "bypassPermissions", deny=["Bash(rm:*)"]), "ionice -c3 rm x") == "deny"
    )


@pytest.mark.parametrize("command", ["bash <(curl -s x.sh)", "source <(echo rm f)", '. "$F"'])
def test_a_script_whose_name_is_an_expansion_is_not_known_statically(
    root: Path, command: str
) -> None:
    assert decide(policy(root, allow=["Bash(bash:*)", "Bash(source:*)", "Bash(.:*)"]), command) == (
        "ask"
    )
    assert decide(policy(root, allow=["Bash(bash run.sh)"]), "bash run.sh") == "allow"
