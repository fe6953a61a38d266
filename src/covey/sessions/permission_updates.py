"""`updatedPermissions` in a `can_use_tool` answer (the Claude Agent SDK's
`PermissionResultAllow(updated_permissions=[PermissionUpdate…])`): the permission changes an
SDK application makes when it allows a call, such as "always allow `npm test`".

Each update has a `type` — `addRules`, `replaceRules`, `removeRules` (with `rules` and a
`behavior`: allow, deny or ask), `setMode` (with `mode`), `addDirectories`,
`removeDirectories` (with `directories`) — and a `destination`: `session` (this session only,
the default), or a settings file where it is kept: `localSettings`
(`.covey/settings.local.json`), `projectSettings` (`.covey/settings.json`), `userSettings`
(`$COVEY_HOME/settings.json`). A change to a file applies to this session too. As in Claude
Code, an answer holding one malformed update applies none of them.

The session's own changes are a settings-shaped layer (`{"permissions": {...}}`) put over
the session's `--settings` layer; a file is read, changed and replaced atomically.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from covey.config import find_project_root, split_permission_rule
from covey.home import covey_home
from covey.tools.permissions import PERMISSION_MODES

__all__ = [
    "PermissionUpdate",
    "apply_update",
    "over_layer",
    "parse_updates",
    "settings_file",
    "take_updates",
    "write_settings_updates",
]

RULE_TYPES = ("addRules", "replaceRules", "removeRules")
DIRECTORY_TYPES = ("addDirectories", "removeDirectories")
DESTINATIONS = ("session", "localSettings", "projectSettings", "userSettings")


@dataclass(frozen=True)
class PermissionUpdate:
    type: str
    destination: str = "session"
    behavior: str | None = None
    rules: tuple[str, ...] = ()
    """covey's rule strings: `Bash(npm test)`, or a bare tool name."""
    mode: str | None = None
    directories: tuple[str, ...] = ()


def parse_updates(raw: object) -> list[PermissionUpdate]:
    """Every update of an answer, checked; a ValueError naming the first bad one."""
    if not isinstance(raw, list):
        raise ValueError("updatedPermissions must be a list")
    return [_parse(item, i) for i, item in enumerate(raw)]


def _parse(item: object, index: int) -> PermissionUpdate:
    where = f"updatedPermissions[{index}]"
    if not isinstance(item, dict):
        raise ValueError(f"{where} must be an object")
    kind, destination = item.get("type"), item.get("destination") or "session"
    if destination not in DESTINATIONS:
        raise ValueError(f"{where}.destination must be one of {', '.join(DESTINATIONS)}")
    if kind in RULE_TYPES:
        behavior, rules = item.get("behavior"), item.get("rules")
        if behavior not in ("allow", "deny", "ask"):
            raise ValueError(f"{where}.behavior must be allow, deny or ask")
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise ValueError(f"{where}.rules must be a list of {{toolName, ruleContent?}}")
        texts = tuple(_rule_text(r, where) for r in rules)
        for text in texts:
            try:
                split_permission_rule(text)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
        return PermissionUpdate(kind, destination, behavior, rules=texts)
    if kind == "setMode":
        if item.get("mode") not in PERMISSION_MODES:
            raise ValueError(f"{where}.mode must be one of {', '.join(PERMISSION_MODES)}")
        return PermissionUpdate(kind, destination, mode=item["mode"])
    if kind in DIRECTORY_TYPES:
        dirs = item.get("directories")
        if not isinstance(dirs, list) or not all(isinstance(d, str) and d for d in dirs):
            raise ValueError(f"{where}.directories must be a list of paths")
        return PermissionUpdate(kind, destination, directories=tuple(dirs))
    raise ValueError(f"{where}.type {kind!r} is not one of {', '.join(_TYPES)}")


_TYPES = (*RULE_TYPES, "setMode", *DIRECTORY_TYPES)


def _rule_text(rule: dict[str, Any], where: str) -> str:
    tool, content = rule.get("toolName"), rule.get("ruleContent")
    if not isinstance(tool, str) or not tool:
        raise ValueError(f"{where}.rules: every rule needs a toolName")
    if content is None or content == "":
        return tool
    if not isinstance(content, str):
        raise ValueError(f"{where}.rules: ruleContent must be a string")
    return f"{tool}({content})"


def take_updates(
    raw: object, layer: dict[str, Any], cwd: Path
) -> tuple[dict[str, Any], list[PermissionUpdate]]:
    """A copy of the session's `layer` with `raw`'s session updates, and every update; those
    for a settings file are written. A malformed one: ValueError, and nothing changed."""
    updates = parse_updates(raw)
    layer = copy.deepcopy(layer)
    files: dict[Path, list[PermissionUpdate]] = {}
    for update in updates:
        if update.destination == "session":
            apply_update(layer, update)
        else:
            files.setdefault(settings_file(update.destination, cwd), []).append(update)
    for path, changes in files.items():
        write_settings_updates(path, changes)
    return layer, updates


def apply_update(layer: dict[str, Any], update: PermissionUpdate) -> None:
    """Change a settings-shaped layer (`{"permissions": {...}}`) in place."""
    perms = layer.setdefault("permissions", {})
    if update.type == "setMode":
        perms["defaultMode"] = update.mode
        return
    if update.type in DIRECTORY_TYPES:
        key, items = "additionalDirectories", update.directories
        adding = update.type == "addDirectories"
    else:
        assert update.behavior is not None
        key, items = update.behavior, update.rules
        adding = update.type == "addRules"
        if update.type == "replaceRules":
            perms[key] = list(items)
            return
    current = [x for x in perms.get(key, []) if isinstance(x, str)]
    if adding:
        perms[key] = current + [x for x in items if x not in current]
    else:
        perms[key] = [x for x in current if x not in items]


def over_layer(base: dict[str, Any] | None, layer: dict[str, Any]) -> dict[str, Any]:
    """`layer`'s permissions over a `--settings` layer: lists join, values replace."""
    out = dict(base or {})
    perms = dict(out.get("permissions") or {})
    for key, value in layer.get("permissions", {}).items():
        below = perms.get(key)
        if isinstance(value, list) and isinstance(below, list):
            perms[key] = below + [x for x in value if x not in below]
        else:
            perms[key] = value
    out["permissions"] = perms
    return out


def settings_file(destination: str, cwd: Path) -> Path:
    if destination == "userSettings":
        return covey_home() / "settings.json"
    name = "settings.local.json" if destination == "localSettings" else "settings.json"
    return find_project_root(cwd) / ".covey" / name


def write_settings_updates(path: Path, updates: list[PermissionUpdate]) -> None:
    """Apply `updates` to the settings file at `path` (created if missing), atomically. A file
    that is not a JSON object is left alone: a ValueError naming it."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not readable JSON ({e}); fix or remove it") from None
    if not isinstance(data, dict) or not isinstance(data.get("permissions", {}), dict):
        raise ValueError(f"{path}: expected a JSON object with a `permissions` object")
    for update in updates:
        apply_update(data, update)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
