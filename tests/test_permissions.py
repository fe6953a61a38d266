"""Permission rules and modes: syntax, every specifier form, evaluation order, settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

import covey.tools.permissions as permissions
from covey.config import Settings, load_settings
from covey.errors import UserError
from covey.tools.base import Tool, ToolInput
from covey.tools.permissions import (
    PERMISSION_MODES,
    Decision,
    PermissionPolicy,
    parse_tool_list,
)


class _Fake(Tool[ToolInput]):
    description: ClassVar[str] = "a stand-in"
    input_model: ClassVar[type[ToolInput]] = ToolInput


class Read(_Fake):
    name = "Read"
    read_only = True


class Glob(_Fake):
    name = "Glob"
    read_only = True


class Grep(_Fake):
    name = "Grep"
    read_only = True


class Write(_Fake):
    name = "Write"
    edits_files = True


class Edit(_Fake):
    name = "Edit"
    edits_files = True


class Bash(_Fake):
    name = "Bash"


class WebFetch(_Fake):
    name = "WebFetch"


class Agent(_Fake):
    name = "Agent"


class WebSearch(_Fake):
    name = "WebSearch"
    read_only = True


class McpIssue(_Fake):
    name = "mcp__github__get_issue"


READ, GLOB, GREP, WRITE, EDIT, BASH = Read(), Glob(), Grep(), Write(), Edit(), Bash()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "repo"
    (project / ".git").mkdir(parents=True)
    (project / "src").mkdir()
    return project.resolve()


def policy(
    root: Path,
    mode: str = "default",
    *,
    allow: list[str] | None = None,
    ask: list[str] | None = None,
    deny: list[str] | None = None,
    workspace: Path | None = None,
) -> PermissionPolicy:
    return PermissionPolicy(mode, allow or [], ask or [], deny or [], root, workspace or root)


def bash(p: PermissionPolicy, command: str) -> str:
    return p.decide(BASH, {"command": command}).behavior


def test_public_surface() -> None:
    assert set(permissions.__all__) == {
        "EDIT_TOOLS",
        "PERMISSION_MODES",
        "READ_TOOLS",
        "Behavior",
        "Decision",
        "PROTECTED_DIRS",
        "PermissionPolicy",
        "parse_tool_list",
        "rule_matches",
    }
    assert PERMISSION_MODES == ("default", "acceptEdits", "plan", "dontAsk", "bypassPermissions")


# --- rule syntax -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule", ["", "  ", "Bash(git", "Bash)", "Bash()", "Bash(a) b", "Bash(a))(b", "Ba sh", "*"]
)
def test_invalid_rules_name_the_rule_and_list(root: Path, rule: str) -> None:
    with pytest.raises(UserError, match="invalid deny permission rule") as e:
        policy(root, deny=["Read", rule])
    assert rule.strip() in str(e.value) and "\n" not in str(e.value)


def test_invalid_cli_rule_names_the_flag(root: Path) -> None:
    with pytest.raises(UserError, match=r"^--disallowedTools: unbalanced parentheses"):
        PermissionPolicy.from_settings(
            Settings(), disallowed_tools=["Bash(rm"], project_root=root, workspace=root
        )
    with pytest.raises(UserError, match=r"^--allowedTools: .*'Bash\(\)'"):
        PermissionPolicy.from_settings(
            Settings(), allowed_tools=["Bash()"], project_root=root, workspace=root
        )


@pytest.mark.parametrize(
    ("value", "rules"),
    [
        ("Bash(git log:*) Edit", ["Bash(git log:*)", "Edit"]),
        ("Read,Write", ["Read", "Write"]),
        ("Bash(npm run test:*), Edit  Grep,", ["Bash(npm run test:*)", "Edit", "Grep"]),
        ("Bash(echo a,b (c d))", ["Bash(echo a,b (c d))"]),
        ("", []),
    ],
)
def test_parse_tool_list(value: str, rules: list[str]) -> None:
    assert parse_tool_list(value) == rules


def test_parse_tool_list_unbalanced() -> None:
    with pytest.raises(UserError, match="--allowedTools: unbalanced"):
        parse_tool_list("Bash(git log))")


def test_from_settings_adds_cli_rules_and_mode(root: Path) -> None:
    settings = Settings.model_validate(
        {"permissions": {"allow": ["Read"], "defaultMode": "acceptEdits"}}
    )
    p = PermissionPolicy.from_settings(
        settings,
        allowed_tools=["Bash(git log:*) Edit", "Grep"],
        disallowed_tools=["Bash(git push:*),WebFetch"],
        project_root=root,
        workspace=root,
    )
    assert p.mode == "acceptEdits"
    assert [r.text for r in p.allow] == ["Read", "Bash(git log:*)", "Edit", "Grep"]
    assert [r.text for r in p.deny] == ["Bash(git push:*)", "WebFetch"]
    assert bash(p, "git log --oneline") == "allow"
    assert bash(p, "git push origin main") == "deny"
    override = PermissionPolicy.from_settings(
        settings, mode_override="plan", project_root=root, workspace=root
    )
    assert override.mode == "plan"
    with pytest.raises(UserError, match="unknown permission mode 'auto'"):
        PermissionPolicy.from_settings(
            settings, mode_override="auto", project_root=root, workspace=root
        )


# --- Bash specifiers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "command", "allowed"),
    [
        ("Bash(npm test)", "npm test", True),
        ("Bash(npm test)", "  npm test ", True),
        ("Bash(npm test)", "npm test --watch", False),
        ("Bash(git:*)", "git", True),
        ("Bash(git:*)", "git status", True),
        ("Bash(git:*)", "gitk", False),
        ("Bash(npm run test:*)", "npm run test -- -k x", True),
        ("Bash(git *)", "git log --oneline -n 5", True),
        ("Bash(git * main)", "git push origin main", True),
        ("Bash(git * main)", "git push origin dev", False),
        ("Bash(ls *)", "ls -la", True),
        ("Bash(ls *)", "ls", True),
        ("Bash(ls *)", "lsof", False),
        ("Bash(ls*)", "lsof", True),
        ("Bash(*)", "anything at all", True),
        ("Bash", "rm -rf build", True),
    ],
)
def test_bash_specifiers(root: Path, rule: str, command: str, allowed: bool) -> None:
    assert bash(policy(root, allow=[rule]), command) == ("allow" if allowed else "ask")


def test_compound_commands_need_every_part_allowed(root: Path) -> None:
    p = policy(root, allow=["Bash(git *)", "Bash(echo *)"])
    assert bash(p, "git status && rm -rf /") == "ask"
    assert bash(p, "git status | tee out; rm x") == "ask"
    assert bash(p, "echo $(rm -rf x)") == "ask"
    assert bash(p, "echo `rm -rf x`") == "ask"
    assert bash(p, "echo 'a && rm b'") == "allow"
    decision = p.decide(BASH, {"command": "git add . && echo done"})
    assert decision == Decision("allow", "Bash(git *), Bash(echo *)", decision.reason)
    exact = policy(root, allow=["Bash(make && make install)"])
    assert bash(exact, "make && make install") == "allow"


def test_deny_matches_any_part_of_a_compound_command(root: Path) -> None:
    p = policy(root, "bypassPermissions", deny=["Bash(rm *)"])
    assert bash(p, "echo hi; rm -rf x") == "deny"
    assert bash(p, "ls $(rm -rf x)") == "deny"
    assert bash(p, "(cd /tmp && rm -f y)") == "deny"
    assert bash(p, "echo rm -rf x") == "allow"


# --- path specifiers ---------------------------------------------------------------------


def test_edit_rules_cover_write_and_are_relative_to_the_root(root: Path) -> None:
    p = policy(root, allow=["Edit(src/**)"])
    assert p.decide(WRITE, {"file_path": str(root / "src" / "a" / "b.py")}).behavior == "allow"
    assert p.decide(EDIT, {"file_path": "src/x.py"}).behavior == "allow"  # relative input
    assert p.decide(WRITE, {"file_path": str(root / "lib" / "b.py")}).behavior == "ask"
    assert p.decide(WRITE, {"file_path": str(root / "x" / "src" / "b.py")}).behavior == "ask"


def test_slash_is_root_anchored_and_double_slash_is_absolute(root: Path, tmp_path: Path) -> None:
    p = policy(root, deny=["Edit(/src/**)", f"Read(/{tmp_path}/outside/**)"])
    assert p.decide(WRITE, {"file_path": str(root / "src" / "a.py")}).behavior == "deny"
    assert p.decide(WRITE, {"file_path": str(root / "a" / "src" / "a.py")}).behavior == "ask"
    outside = tmp_path / "outside" / "deep" / "f.txt"
    assert p.decide(READ, {"file_path": str(outside)}).behavior == "deny"
    # `/abs/...` with one slash is under the project root, not absolute
    q = policy(root, deny=[f"Read({tmp_path}/outside/**)"])
    assert q.decide(READ, {"file_path": str(outside)}).behavior == "allow"


def test_unanchored_pattern_matches_at_any_depth(root: Path) -> None:
    p = policy(root, deny=["Read(*.env)"])
    assert p.decide(READ, {"file_path": str(root / "a" / "b" / "prod.env")}).behavior == "deny"
    assert p.decide(READ, {"file_path": str(root / "prod.env")}).behavior == "deny"
    assert p.decide(READ, {"file_path": str(root / "env.txt")}).behavior == "allow"


def test_home_rules(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "secrets").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    p = policy(root, deny=["Read(~/secrets/**)"])
    assert p.decide(READ, {"file_path": "~/secrets/key"}).behavior == "deny"
    assert p.decide(READ, {"file_path": str(home / "secrets" / "a" / "b")}).behavior == "deny"
    assert p.decide(READ, {"file_path": str(home / "public")}).behavior == "allow"


def test_read_rules_cover_glob_and_grep_but_not_edits(root: Path) -> None:
    (root / "secrets").mkdir()
    p = policy(root, deny=["Read(secrets/**)"])
    assert p.decide(GREP, {"pattern": "x", "path": "secrets"}).behavior == "deny"
    assert p.decide(GLOB, {"pattern": "*", "path": str(root / "secrets")}).behavior == "deny"
    assert p.decide(GREP, {"pattern": "x", "path": "src"}).behavior == "allow"
    assert p.decide(GLOB, {"pattern": "*"}).behavior == "allow"  # no path: the workspace
    assert p.decide(WRITE, {"file_path": "secrets/k"}).behavior == "ask"


def test_symlinks_cannot_dodge_a_deny_or_borrow_an_allow(root: Path, tmp_path: Path) -> None:
    (root / "secrets").mkdir()
    (root / "secrets" / "key").write_text("k")
    (root / "innocent").symlink_to(root / "secrets" / "key")
    denied = policy(root, deny=["Read(secrets/**)"]).decide(READ, {"file_path": "innocent"})
    assert denied.behavior == "deny"
    (tmp_path / "elsewhere").mkdir()
    (root / "src" / "escape").symlink_to(tmp_path / "elsewhere")
    p = policy(root, allow=["Edit(src/**)"])
    assert p.decide(WRITE, {"file_path": "src/escape/x.py"}).behavior == "ask"


def test_relative_rules_also_apply_inside_a_worktree(root: Path) -> None:
    worktree = root / ".covey" / "worktrees" / "w1"
    (worktree / "src").mkdir(parents=True)
    p = policy(root, deny=["Edit(src/**)"], workspace=worktree)
    assert p.decide(WRITE, {"file_path": "src/a.py"}).behavior == "deny"
    assert p.decide(WRITE, {"file_path": str(root / "src" / "a.py")}).behavior == "deny"


# --- other tools -------------------------------------------------------------------------


def test_other_tool_specifiers(root: Path) -> None:
    p = policy(
        root,
        allow=["Agent(Explore)", "WebFetch(domain:example.com)", "mcp__github"],
        deny=["Task(Danger)", "WebSearch(query:secret *)"],
    )
    agent, fetch, search = Agent(), WebFetch(), WebSearch()
    assert p.decide(agent, {"subagent_type": "Explore", "prompt": "p"}).behavior == "allow"
    assert p.decide(agent, {"subagent_type": "Plan", "prompt": "p"}).behavior == "ask"
    assert p.decide(agent, {"subagent_type": "Danger", "prompt": "p"}).behavior == "deny"
    assert p.decide(fetch, {"url": "https://docs.example.com/a"}).behavior == "allow"
    assert p.decide(fetch, {"url": "https://example.com.evil.io/"}).behavior == "ask"
    assert p.decide(search, {"query": "secret plans"}).behavior == "deny"
    assert p.decide(search, {"query": "cats"}).behavior == "allow"
    assert p.decide(McpIssue(), {"number": 1}).behavior == "allow"


@pytest.mark.parametrize(
    ("rule", "allowed"),
    [
        ("mcp__github__get_issue", True),
        ("mcp__github__*", True),
        ("mcp__github__get_*", True),
        ("mcp__github", True),
        ("mcp__git", False),
        ("mcp__gitlab__get_issue", False),
    ],
)
def test_mcp_rules(root: Path, rule: str, allowed: bool) -> None:
    expected = "allow" if allowed else "ask"
    assert policy(root, allow=[rule]).decide(McpIssue(), {}).behavior == expected


def test_tool_enabled_only_for_bare_deny(root: Path) -> None:
    p = policy(root, deny=["Bash", "Read(secrets/**)", "mcp__github"])
    assert not p.tool_enabled("Bash")
    assert p.tool_enabled("Read") and p.tool_enabled("Grep")
    assert not p.tool_enabled("mcp__github__get_issue")
    q = policy(root, deny=["Edit", "Read"])
    assert not any(q.tool_enabled(n) for n in ("Edit", "Write", "Read", "Glob", "Grep"))
    assert q.tool_enabled("Bash")


# --- evaluation order and modes ----------------------------------------------------------


def test_deny_then_ask_then_allow(root: Path) -> None:
    p = policy(root, allow=["Bash"], ask=["Bash(git push:*)"], deny=["Bash(rm *)"])
    assert p.decide(BASH, {"command": "rm -rf x"}) == Decision(
        "deny", "Bash(rm *)", "denied by permission rule Bash(rm *)"
    )
    ask = p.decide(BASH, {"command": "git push"})
    assert (ask.behavior, ask.rule) == ("ask", "Bash(git push:*)")
    assert p.decide(BASH, {"command": "make"}) == Decision(
        "allow", "Bash", "allowed by permission rule Bash"
    )


def test_default_mode(root: Path) -> None:
    p = policy(root)
    assert p.decide(READ, {"file_path": "x"}).behavior == "allow"
    assert p.decide(WRITE, {"file_path": "x"}).behavior == "ask"
    assert p.decide(BASH, {"command": "ls"}).reason == "Bash needs permission in default mode"


def test_accept_edits_mode(root: Path, tmp_path: Path) -> None:
    p = policy(root, "acceptEdits")
    assert p.decide(WRITE, {"file_path": "src/new.py"}).behavior == "allow"
    assert p.decide(EDIT, {"file_path": str(root / "README.md")}).behavior == "allow"
    assert p.decide(WRITE, {"file_path": str(tmp_path / "outside.txt")}).behavior == "ask"
    assert p.decide(WRITE, {"file_path": "../escape.txt"}).behavior == "ask"
    assert p.decide(WRITE, {"file_path": ".covey/settings.local.json"}).behavior == "ask"
    assert p.decide(EDIT, {"file_path": ".git/config"}).behavior == "ask"
    assert bash(p, "touch x") == "ask"
    assert p.decide(READ, {"file_path": "x"}).behavior == "allow"


def test_accept_edits_covers_additional_directories(root: Path, tmp_path: Path) -> None:
    extra = tmp_path / "shared"
    extra.mkdir()
    settings = Settings.model_validate(
        {"permissions": {"defaultMode": "acceptEdits", "additionalDirectories": [str(extra)]}}
    )
    p = PermissionPolicy.from_settings(settings, project_root=root, workspace=root)
    assert p.decide(WRITE, {"file_path": str(extra / "a.txt")}).behavior == "allow"


def test_plan_mode_is_read_only(root: Path) -> None:
    p = policy(root, "plan", allow=["Bash", "Edit"], ask=["Read(secret)"])
    assert p.decide(READ, {"file_path": "x"}).behavior == "allow"
    assert p.decide(READ, {"file_path": "secret"}).behavior == "ask"
    for tool, inp in ((WRITE, {"file_path": "x"}), (BASH, {"command": "ls"})):
        d = p.decide(tool, inp)
        assert d.behavior == "deny" and d.rule is None
        assert "plan mode is read-only" in d.reason


def test_dont_ask_mode_denies_what_would_ask(root: Path) -> None:
    p = policy(root, "dontAsk", allow=["Bash(npm test)"], ask=["Read(.env)"])
    assert bash(p, "npm test") == "allow"
    assert bash(p, "npm publish") == "deny"
    assert p.decide(WRITE, {"file_path": "x"}).behavior == "deny"
    d = p.decide(READ, {"file_path": ".env"})
    assert (d.behavior, d.rule) == ("deny", "Read(.env)") and "dontAsk" in d.reason
    assert p.decide(READ, {"file_path": "x"}).behavior == "allow"


def test_bypass_permissions_allows_all_but_deny(root: Path, tmp_path: Path) -> None:
    p = policy(root, "bypassPermissions", ask=["Bash(git push:*)"], deny=["Read(.env)"])
    assert bash(p, "rm -rf build") == "allow"
    assert bash(p, "git push") == "allow"
    assert p.decide(WRITE, {"file_path": str(tmp_path / "anywhere")}).behavior == "allow"
    assert p.decide(READ, {"file_path": ".env"}).behavior == "deny"


def test_unknown_mode(root: Path) -> None:
    with pytest.raises(UserError, match="unknown permission mode 'auto'"):
        policy(root, "auto")


def test_deny_in_local_settings_beats_allow_in_shared(root: Path) -> None:
    covey = root / ".covey"
    covey.mkdir()
    (covey / "settings.json").write_text(json.dumps({"permissions": {"allow": ["Bash"]}}))
    local = {"permissions": {"deny": ["Bash(curl *)"], "allow": ["Read"]}}
    (covey / "settings.local.json").write_text(json.dumps(local))
    loaded = load_settings(root / "src")
    p = PermissionPolicy.from_settings(
        loaded.settings, project_root=loaded.project_root, workspace=loaded.project_root
    )
    assert bash(p, "curl https://x.io") == "deny"
    assert bash(p, "make") == "allow"
