"""Provider credentials never reach the commands tools and hooks run (their output goes to the
model and the transcript), unless the settings say `"tools": {"passCredentials": true}`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from clitools import covey
from covey.config import Settings, credential_names
from covey.hooks import HookRunner, validate_hooks
from covey.tools import BashTool, ToolContext
from covey.tools.base import SandboxOptions

SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-secret-1",
    "ANTHROPIC_AUTH_TOKEN": "auth-secret-2",
    "ANTHROPIC_CUSTOM_KEY": "custom-secret-3",
    "OPENAI_API_KEY": "sk-openai-secret-4",
}


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COVEY_TEST_PLAIN", "plain-value")


def bash_env(tmp_path: Path, sandbox: SandboxOptions) -> str:
    tool = BashTool()
    ctx = ToolContext(workspace=tmp_path, sandbox=sandbox)
    return asyncio.run(tool.run(tool.parse({"command": "env"}), ctx))


@pytest.mark.usefixtures("secrets")
def test_bash_sees_no_provider_credential(tmp_path: Path) -> None:
    out = bash_env(tmp_path, SandboxOptions())
    assert not [v for v in SECRETS.values() if v in out]
    assert "COVEY_TEST_PLAIN=plain-value" in out
    passed = bash_env(tmp_path, SandboxOptions(pass_credentials=True))
    assert all(f"{k}={v}" in passed for k, v in SECRETS.items())


def test_keys_of_credentials_json_and_secret_settings_env_are_removed_too(
    tmp_path: Path, covey_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = covey_home / "credentials.json"
    stored.write_text(json.dumps({"MY_GATEWAY_PASS": "gw-secret"}))
    stored.chmod(0o600)
    monkeypatch.setenv("MY_GATEWAY_PASS", "gw-secret")
    monkeypatch.setenv("PROXY_TOKEN", "proxy-secret")
    settings = Settings.model_validate({"env": {"PROXY_TOKEN": "x", "PROXY_URL": "http://p"}})
    names = credential_names(settings)
    assert names == {"MY_GATEWAY_PASS", "PROXY_TOKEN"}
    out = bash_env(tmp_path, SandboxOptions(credential_names=names))
    assert "gw-secret" not in out and "proxy-secret" not in out


@pytest.mark.usefixtures("secrets")
def test_hooks_see_no_provider_credential(tmp_path: Path) -> None:
    dump = tmp_path / "hook-env.txt"
    config, _ = validate_hooks(
        {"Stop": [{"hooks": [{"type": "command", "command": f"env > {dump}"}]}]}, "test"
    )
    for pass_credentials in (False, True):
        runner = HookRunner(
            config,
            session_id="s",
            cwd=tmp_path,
            project_dir=tmp_path,
            pass_credentials=pass_credentials,
        )
        asyncio.run(runner.run("Stop", {}))
        seen = dump.read_text()
        assert "COVEY_PROJECT_DIR=" in seen
        leaked = [v for v in SECRETS.values() if v in seen]
        assert leaked == (list(SECRETS.values()) if pass_credentials else [])


def run_env_script(repo: Path, tmp_path: Path, settings: dict[str, object]) -> tuple[str, str]:
    """`covey -p` whose agent runs `env` in Bash, with a PostToolUse hook dumping its own
    environment: (what the run printed, what the hook saw)."""
    dump = tmp_path / "hook-env.txt"
    hooks = {"PostToolUse": [{"hooks": [{"type": "command", "command": f"env > {dump}"}]}]}
    (repo / ".covey").mkdir(exist_ok=True)
    (repo / ".covey" / "settings.json").write_text(json.dumps({**settings, "hooks": hooks}))
    script = tmp_path / "script.yaml"
    turns = [{"tool_calls": [{"name": "Bash", "input": {"command": "env"}}]}, {"text": "ok"}]
    script.write_text(yaml.safe_dump({"turns": turns}))
    args = ["-p", "--model", f"scripted:{script}", "--output-format", "stream-json"]
    run = covey(*args, "--allowedTools", "Bash", "show env", cwd=repo, env=SECRETS)
    assert run.code == 0, run.err
    assert "COVEY_PROJECT_DIR" in dump.read_text()
    return run.out, dump.read_text()


def test_a_session_keeps_credentials_from_bash_and_hooks(git_repo: Path, tmp_path: Path) -> None:
    printed, hook = run_env_script(git_repo, tmp_path, {})
    assert "PATH=" in printed  # the env output is there, without the keys
    assert [v for v in SECRETS.values() if v in printed + hook] == []


def test_pass_credentials_lets_them_through(git_repo: Path, tmp_path: Path) -> None:
    printed, hook = run_env_script(git_repo, tmp_path, {"tools": {"passCredentials": True}})
    assert "sk-ant-secret-1" in printed and "sk-ant-secret-1" in hook
