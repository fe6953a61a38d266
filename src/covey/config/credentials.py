"""`$COVEY_HOME/credentials.json`: provider keys for the supervisor, and the names of every
credential that tools and hooks must not see."""

from __future__ import annotations

import json
import re
from pathlib import Path

from covey.config.models import Settings
from covey.errors import CredentialsError
from covey.home import covey_home

__all__ = ["credential_names", "credentials_path", "load_credentials"]


def credentials_path() -> Path:
    return covey_home() / "credentials.json"


def load_credentials() -> dict[str, str]:
    """`$COVEY_HOME/credentials.json`: provider variables (`{"ANTHROPIC_API_KEY": "..."}`)
    for the supervisor. Missing file: {}. It must be readable by its owner only (0600)."""
    path = credentials_path()
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise CredentialsError(f"{path}: cannot read it ({e.strerror})") from e
    if mode & 0o077:
        raise CredentialsError(
            f"{path} is readable by others (mode {mode & 0o777:o}): chmod 600 {path}"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CredentialsError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from e
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise CredentialsError(
            f'{path}: must be one object of strings, like {{"ANTHROPIC_API_KEY": "…"}}'
        )
    return data


_SECRET_NAME = re.compile(r"(?i).*(KEY|TOKEN|SECRET|PASSWORD)")


def credential_names(settings: Settings) -> frozenset[str]:
    """Credentials to keep from tools and hooks besides the provider variables
    (`proc.CREDENTIAL_VARS`): every key of `credentials.json` (an unreadable file gives none)
    and the keys of the settings `env` whose name says secret (`…KEY`, `…TOKEN`, `…SECRET`,
    `…PASSWORD`)."""
    try:
        stored = load_credentials()
    except CredentialsError:
        stored = {}
    named = {name for name in settings.env if _SECRET_NAME.fullmatch(name)}
    return frozenset(stored).union(named)
