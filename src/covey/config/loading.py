"""Settings files, read, validated one by one and merged by precedence (see `covey.config`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from covey.config.errors import count_problems, describe_error, json_kind
from covey.config.models import Settings
from covey.errors import UserError
from covey.home import covey_home

__all__ = [
    "SETTING_SOURCES",
    "LoadedSettings",
    "effective_env",
    "find_project_root",
    "load_settings",
    "user_settings",
]


@dataclass
class LoadedSettings:
    settings: Settings
    """The merged, validated settings."""
    project_root: Path
    """The nearest ancestor of the working directory holding `.covey/` or `.git`."""
    files: list[Path] = field(default_factory=list)
    """The settings files that existed, lowest precedence first."""
    warnings: list[str] = field(default_factory=list)
    """One line per unknown key."""
    overrides: dict[str, Any] | None = None
    """The command line's layer (`--settings`), on top of the files."""


def find_project_root(cwd: Path) -> Path:
    """The nearest ancestor of `cwd` (itself included) with `.covey/` or `.git`, else `cwd`.

    A `.covey/` that is `$COVEY_HOME` (the usual `~/.covey`) does not make a project.
    """
    start = cwd.resolve()
    home = covey_home().resolve()
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
        marker = d / ".covey"
        if marker.is_dir() and marker.resolve() != home:
            return d
    return start


SETTING_SOURCES = ("user", "project", "local")
"""The settings layers `--setting-sources` names: `$COVEY_HOME/settings.json`,
`.covey/settings.json`, `.covey/settings.local.json`."""


def load_settings(
    cwd: Path,
    *,
    overrides: dict[str, Any] | None = None,
    sources: Sequence[str] | None = None,
) -> LoadedSettings:
    """Read, validate and merge every settings layer for a session started in `cwd`;
    `sources`: only these layers (of SETTING_SOURCES; None: all)."""
    root = find_project_root(cwd)
    loaded = LoadedSettings(Settings(), root)
    merged: dict[str, Any] = {}
    seen: set[Path] = set()
    layers = {
        "user": covey_home() / "settings.json",
        "project": root / ".covey" / "settings.json",
        "local": root / ".covey" / "settings.local.json",
    }
    for source, path in layers.items():
        if sources is not None and source not in sources:
            continue
        if (data := _read(path)) is None or (real := path.resolve()) in seen:
            continue
        seen.add(real)
        loaded.files.append(path)
        loaded.warnings += _validate(data, str(path))
        merged = _merge(merged, data)
    if overrides:
        loaded.overrides = overrides
        loaded.warnings += _validate(overrides, "command line")
        merged = _merge(merged, overrides)
    loaded.settings = msgspec.convert(merged, Settings)
    return loaded


def user_settings() -> Settings:
    """The user layer alone (`$COVEY_HOME/settings.json`), for what is per user rather than
    per project (the supervisor). A bad file is a one-line UserError naming it."""
    data = _read(covey_home() / "settings.json")
    if data is None:
        return Settings()
    _validate(data, str(covey_home() / "settings.json"))
    return msgspec.convert(data, Settings)


def effective_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for tools and providers: `environ` with the settings `env` block on top.

    As in Claude Code, the settings `env` applies to the process, so for the keys it names it
    wins over the inherited environment.
    """
    return {**environ, **settings.env}


def _read(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; save it as UTF-8 JSON") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(
            f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: settings must be a JSON object (got {json_kind(data)})")
    return data


def _validate(data: dict[str, Any], source: str) -> list[str]:
    """Validate one layer alone; raise a one-line UserError, or return unknown-key warnings."""
    try:
        msgspec.convert(data, Settings)
    except msgspec.ValidationError as e:
        n = count_problems(data, Settings) - 1
        more = f" (and {n} more problem{'s' if n > 1 else ''})" if n > 0 else ""
        raise UserError(f"{source}: {describe_error(e, data, Settings)}{more}") from None
    return [
        f"unknown key '{key}' in {source}; it is kept but ignored"
        for key in _unknown(data, Settings, "")
    ]


def _unknown(data: dict[str, Any], model: type[msgspec.Struct], prefix: str) -> Iterator[str]:
    """The keys of `data` (and of its objects, down through the models) `model` has no field
    for, in the file's order."""
    fields = {f.name: f.type for f in msgspec.structs.fields(model)}
    for key, value in data.items():
        if key not in fields:
            yield prefix + key
        elif isinstance(value, dict) and _is_struct(fields[key]):
            yield from _unknown(value, fields[key], f"{prefix}{key}.")


def _is_struct(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, msgspec.Struct)


def _merge(low: Any, high: Any) -> Any:
    """`high` over `low`: objects merge deeply, arrays concatenate without duplicates."""
    if isinstance(high, dict):
        out = dict(low) if isinstance(low, dict) else {}
        for key, value in high.items():
            out[key] = _merge(out.get(key), value)
        return out
    if isinstance(high, list):
        out_list: list[Any] = []
        for item in (low if isinstance(low, list) else []) + high:
            if item not in out_list:
                out_list.append(item)
        return out_list
    return high
