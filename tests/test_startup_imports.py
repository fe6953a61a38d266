"""Quick commands load only what they use: no model SDK, agent loop, tool or Textual.

Each command runs as a new `python -X importtime -m covey …` process (the console script runs
the same code), and the modules it imported are read from importtime's report on stderr.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bgtools import supervisor  # noqa: F401  (fixture: stops the daemon a dispatch starts)
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer
from covey.tools import CORE_TOOL_NAMES, core_tools

HEAVY = ("anthropic", "openai", "textual", "covey.agent.loop", "covey.tools.bash", "httpx")
"""Provider SDKs (and their HTTP client), the agent loop, a tool, the TUI."""
NOT_FOR_DISPATCH = (
    "httpx2",
    "asyncio",
    "pathspec",
    "yaml",
    "tree_sitter",
    "covey.hooks.runner",
    "covey.models._client",
    "importlib.metadata",
    "email",
)
"""What reading and dispatching need none of: covey's HTTP client, an event loop, gitignore
matching, YAML (no definition file), the shell parser, the hook runner, package metadata
(pydantic's plugin lookup) and the e-mail parser (it parses an HTTP date in a retry)."""
NO_PYDANTIC = ("pydantic", "pydantic_core", "covey.messages")
"""What a dispatch, `agents --json`, `sessions --json` and `--version` need none of: pydantic
(settings, session meta and hook settings are msgspec Structs; pydantic's import and model
building were half of a dispatch) and the message models."""
NOT_FOR_PLANNING = ("covey.agent.events", "covey.tools.base", "covey.models.base")
"""What a dispatch's plan needs none of: the message models, the agent's events, the tools'
base (their input models) and the model protocol."""


def imported_modules(*args: str, cwd: Path, env: dict[str, str] | None = None) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "covey", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def heavy_in(modules: set[str]) -> list[str]:
    return [h for h in HEAVY if h in modules]


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),
        ("--help",),
        ("agents", "--json"),
        ("sessions", "--json"),
        ("usage", "--json"),
    ],
)
def test_listing_and_version_load_no_sdk_loop_tool_or_tui(git_repo: Path, args: str) -> None:
    modules = imported_modules(*args, cwd=git_repo)
    assert "covey.cli.main" in modules  # the report was read
    assert heavy_in(modules) == []
    assert [m for m in NOT_FOR_DISPATCH if m in modules] == []
    if args != ("usage", "--json"):  # its rows carry the `Usage` model
        assert [m for m in NO_PYDANTIC if m in modules] == []


@pytest.mark.parametrize("args", [("sessions", "--json"), ("usage", "--json")])
def test_listing_reads_the_store_without_the_settings_models(git_repo: Path, args: str) -> None:
    modules = imported_modules(*args, cwd=git_repo)
    assert "covey.store" in modules
    assert "covey.config" not in modules


def test_version_loads_neither_the_store_nor_the_plan(git_repo: Path) -> None:
    modules = imported_modules("--version", cwd=git_repo)
    assert {"covey.store", "covey.sessions.plan", "pydantic"} & modules == set()


def test_bg_dispatch_plans_without_sdk_loop_or_tools(supervisor: Path) -> None:  # noqa: F811
    env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    modules = imported_modules(
        "--bg", "say hi", "--model", "anthropic:claude-sonnet-4-5", cwd=supervisor, env=env
    )
    assert "covey.sessions.plan" in modules  # the dispatch did plan the session
    assert heavy_in(modules) == []
    assert [m for m in NOT_FOR_DISPATCH + NOT_FOR_PLANNING + NO_PYDANTIC if m in modules] == []


def test_the_command_line_builds_models_without_pydantic_plugins(git_repo: Path) -> None:
    """covey's entry point stands in for pydantic's plugin loader (no `importlib.metadata`
    scan) where pydantic models are built (`-p`); pydantic still asks that module."""
    import pydantic.plugin._schema_validator as schema_validator

    assert "from ._loader import get_plugins" in inspect.getsource(schema_validator)
    script = Script.model_validate({"turns": [{"text": "hi"}]})
    no_proxy = {v: "" for v in ("http_proxy", "https_proxy", "all_proxy")}
    no_proxy |= {v.upper(): "" for v in no_proxy}
    with FakeServer(script) as srv:
        env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": srv.url, **no_proxy}
        args = ("-p", "say hi", "--model", "anthropic:claude-sonnet-4-5")
        modules = imported_modules(*args, cwd=git_repo, env=env)
    assert {"pydantic", "covey.messages"} <= modules
    assert "pydantic.plugin._loader" not in modules  # the stand-in is never imported


def test_a_bad_settings_file_stops_a_dispatch_in_one_line(git_repo: Path) -> None:
    """Settings are checked without pydantic on a dispatch, with the same one-line error."""
    (git_repo / ".covey").mkdir()
    (git_repo / ".covey" / "settings.json").write_text('{"retries": {"maxRetries": "x"}}')
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "covey", "--bg", "hi", "--model", "haiku"],
        cwd=git_repo,
        env={**os.environ, "ANTHROPIC_API_KEY": "test-key"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert proc.returncode == 2
    assert errors == [
        f"covey: error: {git_repo / '.covey' / 'settings.json'}: key retries.maxRetries "
        "must be an integer from 0 to 100 (got string)"
    ]
    assert "| pydantic" not in proc.stderr


def test_print_loads_covey_s_client_and_no_provider_sdk(git_repo: Path) -> None:
    """`covey -p` through the real adapter (fake server): covey's own client, no SDK, and no
    httpx when no proxy is set."""
    script = Script.model_validate({"turns": [{"text": "hi"}]})
    no_proxy = {v: "" for v in ("http_proxy", "https_proxy", "all_proxy")}
    no_proxy |= {v.upper(): "" for v in no_proxy}
    with FakeServer(script) as srv:
        env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": srv.url, **no_proxy}
        args = ("-p", "say hi", "--model", "anthropic:claude-sonnet-4-5")
        modules = imported_modules(*args, cwd=git_repo, env=env)
        env = {"OPENAI_BASE_URL": srv.url + "/v1", **no_proxy}
        args = ("-p", "say hi", "--model", "openai:gpt-test")
        modules_openai = imported_modules(*args, cwd=git_repo, env=env)
    for loaded in (modules, modules_openai):
        assert "covey.models._client" in loaded
        assert {"anthropic", "openai"} & loaded == set()
        # plain HTTP, no proxy: covey's HTTP/1.1 client, not httpx (~0.1 s to import)
        assert "covey.models._http11" in loaded
        assert "httpx2" not in loaded


def test_core_tool_names_are_the_names_of_core_tools() -> None:
    assert [t.name for t in core_tools()] == list(CORE_TOOL_NAMES)


def test_lazy_package_names_resolve_to_their_modules() -> None:
    import covey.agent
    import covey.tools
    from covey.agent.loop import Agent, RunResult
    from covey.tools.bash import BashTool

    assert (covey.agent.Agent, covey.agent.RunResult) == (Agent, RunResult)
    assert covey.tools.BashTool is BashTool
    with pytest.raises(AttributeError):
        _ = covey.tools.NoSuchTool
    with pytest.raises(AttributeError):
        _ = covey.agent.NoSuchName


def test_a_cold_dispatch_waits_for_the_supervisor_s_lock_not_its_session_host(
    supervisor: Path,  # noqa: F811
) -> None:
    """The supervisor takes its lock and writes its pid (what `covey --bg` waits for) before
    it imports the session host (the agent stack, most of its start-up)."""
    env = {"ANTHROPIC_API_KEY": "test-key", "PYTHONPROFILEIMPORTTIME": "1"}  # inherited
    done = subprocess.run(
        [sys.executable, "-m", "covey", "--bg", "say hi", "--model", "haiku"],
        cwd=supervisor,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    log = Path(os.environ["COVEY_HOME"]) / "logs" / "supervisor.log"
    deadline = time.monotonic() + 60
    while (daemon := _import_line(log, "covey.supervisor.daemon")) is None:
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.05)
    lines = log.read_text().splitlines()
    started = next(i for i, line in enumerate(lines) if "supervisor" in line and "started" in line)
    assert started < daemon


def _import_line(log: Path, module: str) -> int | None:
    """The line of `log` where `-X importtime` reports `module` imported, if it is there."""
    for i, line in enumerate(log.read_text().splitlines()):
        if line.startswith("import time:") and line.rsplit("|", 1)[1].strip() == module:
            return i
    return None
