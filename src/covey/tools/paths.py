"""Where a tool may touch files: the real path must lie inside the workspace or an added dir.

A path is read one way everywhere (`absolute_path`): `~` is the home directory, a relative
path starts at the workspace. The permission checker and the tools both resolve that same
string, so `~/../.env` cannot be one file for a rule and another for the tool.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from covey.errors import ToolError

if TYPE_CHECKING:
    from covey.tools.base import ToolContext

__all__ = ["NAME_MAX", "absolute_path", "allowed_roots", "check_denied", "resolve_in_workspace"]

NAME_MAX = 255
"""Bytes in one path component (Linux and macOS)."""
_PATH_MAX = 4095


def allowed_roots(ctx: ToolContext) -> list[Path]:
    """The workspace and the extra dirs, symlinks resolved."""
    return [Path(os.path.realpath(d)) for d in (ctx.workspace, *ctx.extra_dirs)]


def absolute_path(workspace: Path | str, path: str) -> str:
    """`path` with `~` expanded and made absolute from the workspace (`..` still in it)."""
    return os.path.join(workspace, os.path.expanduser(path))


def resolve_in_workspace(ctx: ToolContext, path: str, *, must_exist: bool) -> Path:
    """The real path of `path` (absolute, `~/…`, or relative to the workspace), checked to be
    allowed.

    Symlinks are resolved all the way, also in the parents of a file that does not exist yet,
    so neither `..` nor a link that points out of the workspace can escape it. The file tools
    then open exactly this path without following any link (`covey.tools._fs`).
    """
    if not path or "\0" in path:
        raise ToolError(f"invalid path {path!r}")
    given = absolute_path(ctx.workspace, path)
    _check_lengths(given, path)
    try:
        real = Path(os.path.realpath(given))
    except (OSError, ValueError) as e:
        raise ToolError(f"cannot resolve path {path}: {e}") from None
    _check_lengths(str(real), path)
    roots = allowed_roots(ctx)
    if not any(real == root or real.is_relative_to(root) for root in roots):
        where = f"the workspace {roots[0]}"
        if len(roots) > 1:
            where += " or the added dirs " + ", ".join(str(r) for r in roots[1:])
        raise ToolError(f"path {path} resolves outside {where}; only files under it can be used")
    if must_exist and not os.path.lexists(real):
        raise ToolError(f"{path} does not exist")
    return real


def check_denied(ctx: ToolContext, kind: str, real: Path, path: str) -> None:
    """ToolError when a deny rule covers `kind` (Read or Edit) of the real path the tool is
    about to open: the check the permission step made, repeated on the very path used."""
    rule = ctx.rules.denied(kind, str(real)) if ctx.rules is not None else None
    if rule is not None:
        raise ToolError(f"{path} ({real}) is denied by permission rule {rule}")
    refusal = ctx.file_owners.refusal(real) if kind == "Edit" and ctx.file_owners else None
    if refusal is not None:
        raise ToolError(f"{path}: {refusal}")


def _check_lengths(absolute: str, path: str) -> None:
    for name in absolute.split("/"):
        size = len(os.fsencode(name))
        if size > NAME_MAX:
            raise ToolError(
                f"a name in {path[:120]!r} is {size} bytes long; file names are limited to "
                f"{NAME_MAX} bytes"
            )
    if len(os.fsencode(absolute)) > _PATH_MAX:
        raise ToolError(f"the path {path[:120]!r}… is over {_PATH_MAX} bytes long")
