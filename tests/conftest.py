"""Shared fixtures. Every test gets its own COVEY_HOME and no real provider credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

_PROVIDER_VARS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


@pytest.fixture(autouse=True)
def covey_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("covey-home")
    monkeypatch.setenv("COVEY_HOME", str(home))
    for var in _PROVIDER_VARS:
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(autouse=True)
def no_supervisor_left(covey_home: Path) -> Iterator[None]:
    """A supervisor a test started (`covey --bg`, `covey agents`) and left running is stopped
    at its end, so none outlives its test (and its deleted COVEY_HOME)."""
    yield
    from covey.supervisor import stop_supervisor, supervisor_pid

    if supervisor_pid() is not None:
        stop_supervisor(timeout_s=30)


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real git repository with one commit."""
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "test@covey.invalid"],
        ["config", "user.name", "covey test"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True)
    (repo / "README.md").write_text("sample\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=repo, check=True)
    return repo


@pytest.fixture(autouse=True)
def no_watcher_left(tmp_path: Path) -> Iterator[None]:
    """The overlap radar starts a file watcher per repository on demand; stop any a test
    started in a repository directly under its tmp_path."""
    yield
    for repo in (tmp_path, *(p for p in tmp_path.iterdir() if p.is_dir())):
        if (repo / ".git" / "covey" / "fsmonitor").is_dir():
            from covey.git.fsmonitor import stop_watcher

            stop_watcher(repo)


from raytools import ray_cluster  # noqa: E402, F401  (the one Ray cluster of a test session)
from tmuxtools import tmux  # noqa: E402, F401  (a real terminal for the TUI tests)
