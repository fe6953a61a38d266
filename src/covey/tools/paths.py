"""Where a tool may touch files: the real path must lie inside the workspace or an added dir."""

from __future__ import annotations

import os
from pathlib import Path

from covey.errors import ToolError
from covey.tools.base import ToolContext

__all__ = ["allowed_roots", "resolve_in_workspace"]


def allowed_roots(ctx: ToolContext) -> list[Path]:
    """The workspace and the extra dirs, symlinks resolved."""
    return [Path(os.path.realpath(d)) for d in (ctx.workspace, *ctx.extra_dirs)]


def resolve_in_workspace(ctx: ToolContext, path: str, *, must_exist: bool) -> Path:
    """The real path of `path` (absolute, or relative to the workspace), checked to be allowed.

    Symlinks are resolved all the way, also in the parents of a file that does not exist yet,
    so neither `..` nor a link that points out of the workspace can escape it.
    """
    if not path or "\0" in path:
        raise ToolError(f"invalid path {path!r}")
    given = Path(path)
    if not given.is_absolute():
        given = Path(ctx.workspace) / given
    try:
        real = Path(os.path.realpath(given))
    except (OSError, ValueError) as e:
        raise ToolError(f"cannot resolve path {path}: {e}") from None
    roots = allowed_roots(ctx)
    if not any(real == root or real.is_relative_to(root) for root in roots):
        where = f"the workspace {roots[0]}"
        if len(roots) > 1:
            where += " or the added dirs " + ", ".join(str(r) for r in roots[1:])
        raise ToolError(f"path {path} resolves outside {where}; only files under it can be used")
    if must_exist and not real.exists():
        raise ToolError(f"{path} does not exist")
    return real
