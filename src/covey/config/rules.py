"""The values inside settings that are more than a type: permission rules, paths inside the
repository, a Ray head's address. Each check returns the value as stored (stripped) or raises
ValueError with a one-line reason."""

from __future__ import annotations

import re

__all__ = ["check_ray_address", "check_relative_path", "check_rule", "split_permission_rule"]

_NAME = re.compile(r"[A-Za-z0-9_.*-]+")
_MCP_GLOB = re.compile(r"mcp__[A-Za-z0-9_.-]+__[A-Za-z0-9_.*-]*")


def split_permission_rule(rule: str) -> tuple[str, str | None]:
    """`"Bash(git *)"` → `("Bash", "git *")`, `"Read"` → `("Read", None)`.

    Raises ValueError with a one-line reason when the rule is malformed.
    """
    text = rule.strip()
    if not text:
        raise ValueError("empty rule")
    if "(" not in text and ")" not in text:
        name, spec = text, None
    else:
        i = text.find("(")
        if i < 0 or not text.endswith(")") or not _balanced(text[i + 1 : -1]):
            raise ValueError(f"unbalanced parentheses in rule {text!r}; write Tool(specifier)")
        name, spec = text[:i], text[i + 1 : -1]
        if not spec.strip():
            raise ValueError(f"empty specifier in rule {text!r}; write {name!r} for every call")
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid tool name {name!r} in rule {text!r}")
    if "*" in name and not _MCP_GLOB.fullmatch(name):
        raise ValueError(f"'*' in rule {text!r}: tool names take '*' only after mcp__<server>__")
    return name, spec


def _balanced(spec: str) -> bool:
    depth = 0
    for ch in spec:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def check_rule(rule: str) -> str:
    split_permission_rule(rule)
    return rule.strip()


def check_relative_path(path: str) -> str:
    parts = path.replace("\\", "/").split("/")
    if not path.strip() or path.startswith(("/", "~")) or ".." in parts:
        raise ValueError(f"{path!r} must be a path inside the repository, like 'node_modules'")
    return path.strip().strip("/")


def check_ray_address(address: str) -> str:
    host, sep, port = address.strip().rpartition(":")
    if address.strip() == "auto" or (
        sep and host and port.isdigit() and 0 < int(port) < 65536 and " " not in host
    ):
        return address.strip()
    raise ValueError(f'{address!r} must be "auto" or the head\'s HOST:PORT, like 127.0.0.2:6390')
