"""Settings files: precedence, merging, project root discovery, one-line errors, warnings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

import covey.config as config
from covey.config import Settings, covey_home, effective_env, find_project_root, load_settings
from covey.errors import UserError
from docstrings import attribute_docstrings


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    return root


def test_public_surface() -> None:
    assert set(config.__all__) == {
        "SETTING_SOURCES",
        "BackgroundSettings",
        "BudgetSettings",
        "LoadedSettings",
        "ModelPrice",
        "PermissionMode",
        "PermissionSettings",
        "ProviderRateLimits",
        "RateLimitSettings",
        "RaySettings",
        "RetrySettings",
        "SandboxSettings",
        "SubagentSettings",
        "TeamSettings",
        "ToolSettings",
        "WorktreeSettings",
        "Settings",
        "covey_home",
        "credential_names",
        "credentials_path",
        "effective_env",
        "find_project_root",
        "load_credentials",
        "load_settings",
        "split_permission_rule",
        "user_settings",
    }


def test_defaults_without_any_file(project: Path) -> None:
    loaded = load_settings(project)
    assert loaded.files == [] and loaded.warnings == []
    assert loaded.project_root == project.resolve()
    s = loaded.settings
    assert s.permissions.allow == [] and s.permissions.defaultMode is None
    assert s.sandbox.enabled is False and s.sandbox.network is True
    assert (s.retries.maxRetries, s.retries.initialDelay, s.retries.maxDelay) == (10, 0.5, 32.0)
    assert s.model is None and s.autoCompactWindow is None and s.hooks == {}


def test_every_field_has_a_docstring() -> None:
    models: list[type[msgspec.Struct]] = [
        Settings,
        config.PermissionSettings,
        config.SandboxSettings,
        config.RetrySettings,
    ]
    for model in models:
        documented = attribute_docstrings(model)
        for name in model.__struct_fields__:
            assert documented.get(name), f"{model.__name__}.{name}"


def test_precedence_merge_and_overrides(project: Path, covey_home: Path) -> None:
    user = write(
        covey_home / "settings.json",
        {
            "model": "user-model",
            "permissions": {"allow": ["Read", "Bash(git *)"]},
            "env": {"A": "user", "B": "user"},
            "sandbox": {"enabled": True},
            "modelAliases": {"sonnet": "openai:gpt-5"},
        },
    )
    shared = write(
        project / ".covey" / "settings.json",
        {
            "model": "project-model",
            "permissions": {"allow": ["Bash(git *)", "Edit(src/**)"], "defaultMode": "plan"},
            "env": {"B": "project"},
            "sandbox": {"network": False},
        },
    )
    local = write(
        project / ".covey" / "settings.local.json",
        {"permissions": {"deny": ["Bash(rm *)"], "defaultMode": "acceptEdits"}},
    )
    loaded = load_settings(project, overrides={"model": "cli-model", "env": {"C": "cli"}})
    s = loaded.settings
    assert loaded.files == [user, shared, local]
    assert s.model == "cli-model"  # scalars: the highest layer wins
    assert s.permissions.defaultMode == "acceptEdits"
    assert s.permissions.allow == ["Read", "Bash(git *)", "Edit(src/**)"]  # arrays merge
    assert s.permissions.deny == ["Bash(rm *)"]
    assert s.env == {"A": "user", "B": "project", "C": "cli"}  # objects merge deeply
    assert (s.sandbox.enabled, s.sandbox.network) == (True, False)
    assert s.modelAliases == {"sonnet": "openai:gpt-5"}


def test_duplicates_within_one_file_are_removed(project: Path) -> None:
    write(project / ".covey" / "settings.json", {"permissions": {"deny": ["Bash", "Bash"]}})
    assert load_settings(project).settings.permissions.deny == ["Bash"]


def test_project_root_is_nearest_marker(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    (outer / ".git").mkdir(parents=True)
    inner = outer / "pkg"
    (inner / ".covey").mkdir(parents=True)
    deep = inner / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_root(deep) == inner.resolve()
    assert find_project_root(outer / "pkg" / "a") == inner.resolve()
    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / ".git").write_text("gitdir: /elsewhere\n")  # a worktree's .git is a file
    assert find_project_root(worktree) == worktree.resolve()


def test_project_root_defaults_to_cwd(tmp_path: Path) -> None:
    lone = tmp_path / "lone"
    lone.mkdir()
    assert load_settings(lone).project_root == lone.resolve()


def test_covey_home_is_not_a_project_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("COVEY_HOME", str(home / ".covey"))
    write(home / ".covey" / "settings.json", {"model": "m"})
    work = home / "work"
    work.mkdir()
    loaded = load_settings(work)
    assert loaded.project_root == work.resolve()
    assert loaded.files == [home / ".covey" / "settings.json"]


def test_user_file_is_read_once_when_home_is_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".git").mkdir(parents=True)  # a dotfiles repository
    monkeypatch.setenv("COVEY_HOME", str(home / ".covey"))
    write(home / ".covey" / "settings.json", {"permissions": {"allow": ["Read"]}})
    loaded = load_settings(home)
    assert len(loaded.files) == 1
    assert loaded.settings.permissions.allow == ["Read"]


def test_covey_home_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COVEY_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert covey_home() == tmp_path / ".covey"
    monkeypatch.setenv("COVEY_HOME", str(tmp_path / "elsewhere"))
    assert covey_home() == tmp_path / "elsewhere"


def test_invalid_json_is_one_line_with_position(project: Path) -> None:
    path = write(project / ".covey" / "settings.json", '{\n  "model": "x",\n  oops\n}')
    with pytest.raises(UserError) as e:
        load_settings(project)
    msg = str(e.value)
    assert msg.startswith(f"{path}: invalid JSON at line 3 column 3: ")
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("data", "key", "expected"),
    [
        ({"permissions": {"allow": 5}}, "permissions.allow", "a list of strings (got int)"),
        ({"permissions": {"deny": [5]}}, "permissions.deny[0]", "a string (got int)"),
        ({"env": {"A": 1}}, "env.A", "a string (got int)"),
        ({"model": ["x"]}, "model", "a string or null (got list)"),
        ({"sandbox": {"enabled": "yes"}}, "sandbox.enabled", "true or false (got string)"),
        ({"sandbox": True}, "sandbox", "an object (got bool)"),
        ({"retries": {"maxRetries": 101}}, "retries.maxRetries", "from 0 to 100 (got 101)"),
        ({"retries": {"maxDelay": "1"}}, "retries.maxDelay", "a number >= 0 (got string)"),
        ({"autoCompactWindow": 0}, "autoCompactWindow", "an integer > 0 or null (got 0)"),
        ({"permissions": {"defaultMode": "auto"}}, "permissions.defaultMode", 'got "auto"'),
        ({"hooks": []}, "hooks", "an object (got list)"),
    ],
)
def test_wrong_type_is_one_line_naming_file_and_key(
    project: Path, data: dict[str, Any], key: str, expected: str
) -> None:
    path = write(project / ".covey" / "settings.local.json", data)
    with pytest.raises(UserError) as e:
        load_settings(project)
    msg = str(e.value)
    assert msg.startswith(f"{path}: key {key} must be ")
    assert expected in msg
    assert "\n" not in msg


def test_wrong_mode_lists_the_choices(project: Path) -> None:
    write(project / ".covey" / "settings.json", {"permissions": {"defaultMode": "auto"}})
    with pytest.raises(UserError, match="one of default, acceptEdits, plan, dontAsk, bypass"):
        load_settings(project)


def test_each_file_is_validated_alone(project: Path, covey_home: Path) -> None:
    path = write(covey_home / "settings.json", {"model": 3})
    write(project / ".covey" / "settings.json", {"model": "fine"})  # would hide it if merged
    with pytest.raises(UserError, match=f"^{re.escape(str(path))}: key model "):
        load_settings(project)


def test_several_problems_are_counted_on_one_line(project: Path) -> None:
    write(project / ".covey" / "settings.json", {"model": 1, "env": 2})
    with pytest.raises(UserError, match=r"\(and 1 more problem\)$"):
        load_settings(project)


def test_settings_must_be_an_object(project: Path) -> None:
    path = write(project / ".covey" / "settings.json", "[1, 2]")
    with pytest.raises(UserError) as e:
        load_settings(project)
    assert str(e.value) == f"{path}: settings must be a JSON object (got list)"


def test_empty_file_counts_as_empty_object(project: Path) -> None:
    write(project / ".covey" / "settings.json", "  \n")
    assert load_settings(project).settings == Settings()


def test_malformed_rule_names_the_file_and_key(project: Path) -> None:
    path = write(project / ".covey" / "settings.json", {"permissions": {"deny": ["Read", "Bash("]}})
    with pytest.raises(UserError) as e:
        load_settings(project)
    msg = str(e.value)
    assert msg.startswith(f"{path}: key permissions.deny[1]: ")
    assert "Bash(" in msg and "\n" not in msg


def test_unknown_keys_are_warned_about(project: Path) -> None:
    path = write(
        project / ".covey" / "settings.json",
        {"foo": 1, "permissions": {"bar": [2], "allow": ["Read"]}, "hooks": {"Anything": []}},
    )
    loaded = load_settings(project)
    assert loaded.warnings == [
        f"unknown key 'foo' in {path}; it is kept but ignored",
        f"unknown key 'permissions.bar' in {path}; it is kept but ignored",
    ]
    assert loaded.settings.permissions.allow == ["Read"]
    assert loaded.settings.hooks == {"Anything": []}


def test_overrides_are_validated_and_warned_as_command_line(project: Path) -> None:
    loaded = load_settings(project, overrides={"typo": True})
    assert loaded.warnings == ["unknown key 'typo' in command line; it is kept but ignored"]
    with pytest.raises(UserError, match=r"^command line: key model must be"):
        load_settings(project, overrides={"model": 1})


def test_unreadable_settings_is_a_user_error(project: Path) -> None:
    (project / ".covey" / "settings.json").mkdir(parents=True)  # a directory, not a file
    with pytest.raises(UserError, match=r"settings\.json: cannot read"):
        load_settings(project)


def test_effective_env_settings_win() -> None:
    settings = Settings(env={"A": "settings", "NEW": "1"})
    env = effective_env(settings, {"A": "process", "PATH": "/bin"})
    assert env == {"A": "settings", "PATH": "/bin", "NEW": "1"}
