"""Shared fixtures. Every test gets its own COVEY_HOME and no real provider credentials."""

from __future__ import annotations

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
