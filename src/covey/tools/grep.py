"""Grep: search file contents by regex, with ripgrep when it is on PATH, else in Python.

Both engines produce the same hits (files, matching lines, counts) and one formatter turns
them into the tool result, so the model sees the same output either way.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from covey.errors import ToolError
from covey.proc import run_process
from covey.tools._common import optional, require_text
from covey.tools._fs import open_regular
from covey.tools._walk import glob_regex, walk_files
from covey.tools.base import Tool, ToolContext, ToolInput
from covey.tools.paths import check_denied, resolve_in_workspace

__all__ = ["GrepInput", "GrepTool"]

OutputMode = Literal["content", "files_with_matches", "count"]
MAX_OUTPUT_CHARS = 30_000
MAX_LINE_CHARS = 500
RG_TIMEOUT_S = 120.0
_RG_OUTPUT_LIMIT = 20_000_000


class GrepInput(ToolInput):
    pattern: str = Field(description="Regular expression (ripgrep syntax)")
    path: str | None = optional("File or directory to search (default: the workspace)")
    glob: str | None = optional('Only search files matching this glob, e.g. "*.py"')
    output_mode: OutputMode | None = optional(
        "files_with_matches (default): file paths; content: matching lines; count: per file"
    )
    case_insensitive: bool | None = optional("Ignore case", alias="-i")
    line_numbers: bool | None = optional("Line numbers in content mode (default true)", alias="-n")
    head_limit: int | None = optional("Return only the first N lines or files", ge=1)


@dataclass
class _Hits:
    path: str
    count: int = 0
    lines: list[tuple[int, str]] = field(default_factory=list)


class GrepTool(Tool[GrepInput]):
    name = "Grep"
    description = (
        "Search file contents with a regex (ripgrep). Searches hidden files, skips .git, binary "
        "and git-ignored files. Paths in results are absolute."
    )
    input_model = GrepInput
    read_only = True

    def __init__(self, *, use_ripgrep: bool | None = None) -> None:
        """`use_ripgrep`: None finds `rg` on PATH; False always uses the Python engine."""
        rg = shutil.which("rg") if use_ripgrep is not False else None
        if use_ripgrep and rg is None:
            raise ValueError("use_ripgrep=True but rg is not on PATH")
        self.rg = rg

    def validate(self, args: GrepInput, ctx: ToolContext) -> None:
        resolve_in_workspace(ctx, args.path or ".", must_exist=False)

    async def run(self, args: GrepInput, ctx: ToolContext) -> str:
        root = resolve_in_workspace(ctx, args.path or ".", must_exist=True)
        if not root.is_dir():
            check_denied(ctx, "Read", root, args.path or ".")
            _require_text_file(ctx, root, args.path or ".")  # rg and Python disagree on binaries
        mode: OutputMode = args.output_mode or "files_with_matches"
        if self.rg is not None:
            hits = await _search_rg(self.rg, root, args, mode)
        else:
            hits = await asyncio.to_thread(_search_python, root, args)
        if ctx.rules is not None:  # a Read deny rule covers Grep: its files show no lines
            hits = [h for h in hits if not ctx.rules.denied("Read", h.path)]
        return _format(hits, mode, args.line_numbers is not False, args.head_limit)


def _require_text_file(ctx: ToolContext, real: Path, path: str) -> None:
    fd = open_regular(ctx, real, path)  # a FIFO is refused here, not searched forever
    try:
        require_text(fd, path)
    finally:
        os.close(fd)


async def _search_rg(rg: str, root: Path, args: GrepInput, mode: OutputMode) -> list[_Hits]:
    argv = [rg, "--hidden", "--no-require-git", "--no-ignore-global", "--no-config"]
    argv += ["--color=never", "--null", "--with-filename", "--glob=!.git"]
    argv += {"content": ["--line-number"], "count": ["--count"]}.get(mode, ["--files-with-matches"])
    if args.case_insensitive:
        argv.append("--ignore-case")
    if args.glob:
        argv.append(f"--glob={args.glob}")
    argv += ["-e", args.pattern, "--", str(root)]
    cwd = root if root.is_dir() else root.parent
    result = await run_process(argv, cwd=cwd, timeout_s=RG_TIMEOUT_S, output_limit=_RG_OUTPUT_LIMIT)
    if result.timed_out:
        raise ToolError(f"the search timed out after {RG_TIMEOUT_S:.0f} s; narrow path or glob")
    if result.exit_code == 2 and not result.stdout:
        raise ToolError(f"grep failed: {result.stderr.strip()[:1000]}")
    if mode == "files_with_matches":
        return [_Hits(p) for p in result.stdout.split("\0") if p]
    hits: dict[str, _Hits] = {}
    for row in result.stdout.split("\n"):
        path, nul, rest = row.partition("\0")
        if not nul:
            continue  # an elision note in a gigantic result
        entry = hits.setdefault(path, _Hits(path))
        if mode == "count":
            entry.count = int(rest)
        else:
            number, _, text = rest.partition(":")
            entry.lines.append((int(number), text))
            entry.count += 1
    return list(hits.values())


def _search_python(root: Path, args: GrepInput) -> list[_Hits]:
    try:
        regex = re.compile(args.pattern, re.IGNORECASE if args.case_insensitive else 0)
    except re.error as e:
        raise ToolError(f"invalid regex {args.pattern!r}: {e}") from None
    keep = _glob_filter(args.glob)
    hits: list[_Hits] = []
    for path in walk_files(root, respect_ignores=True):
        if root.is_dir() and not keep(path.relative_to(root).as_posix()):
            continue
        data = _read_regular(path)
        if data is None or b"\0" in data:
            continue
        rows = data.decode(errors="replace").split("\n")
        if rows[-1] == "":
            rows.pop()
        lines = [(n, row) for n, row in enumerate(rows, 1) if regex.search(row)]
        if lines:
            hits.append(_Hits(str(path), len(lines), lines))
    return hits


def _read_regular(path: Path) -> bytes | None:
    """The bytes of a regular file; None for anything else (a FIFO swapped in never hangs)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with open(fd, "rb", closefd=False) as f:
            return f.read()
    except OSError:
        return None
    finally:
        os.close(fd)


def _glob_filter(glob: str | None) -> Callable[[str], bool]:
    """ripgrep's --glob: a glob without `/` matches the file name, else the relative path;
    a leading `!` excludes."""
    if not glob:
        return lambda rel: True
    negate = glob.startswith("!")
    body = glob[1:] if negate else glob
    regex = glob_regex(body.lstrip("/"))
    by_path = "/" in body

    def keep(rel: str) -> bool:
        target = rel if by_path else rel.rsplit("/", 1)[-1]
        return bool(regex.fullmatch(target)) != negate

    return keep


def _format(hits: list[_Hits], mode: OutputMode, numbers: bool, head_limit: int | None) -> str:
    if not hits:
        return "No matches found" if mode != "files_with_matches" else "No files found"
    if mode == "files_with_matches":
        rows = [h.path for h in sorted(hits, key=_newest_first)]
        header = [f"Found {len(rows)} file{'s' if len(rows) != 1 else ''}"]
    elif mode == "count":
        hits.sort(key=lambda h: h.path)
        rows = [f"{h.path}:{h.count}" for h in hits]
        total = sum(h.count for h in hits)
        header = [f"Found {total} matching lines in {len(hits)} files"]
    else:
        hits.sort(key=lambda h: h.path)
        rows = [
            f"{h.path}:{n}:{_cut(text)}" if numbers else f"{h.path}:{_cut(text)}"
            for h in hits
            for n, text in h.lines
        ]
        header = []
    notes = []
    if head_limit is not None and len(rows) > head_limit:
        notes.append(f"(showing the first {head_limit} of {len(rows)})")
        rows = rows[:head_limit]
    out: list[str] = []
    size = 0
    for i, row in enumerate(rows):
        size += len(row) + 1
        if size > MAX_OUTPUT_CHARS:
            notes.append(
                f"(output cut at {MAX_OUTPUT_CHARS:,} characters; {len(rows) - i} more rows; "
                "narrow the search or use head_limit)"
            )
            break
        out.append(row)
    return "\n".join(header + out + notes)


def _cut(text: str) -> str:
    text = text.removesuffix("\r")
    return text if len(text) <= MAX_LINE_CHARS else text[:MAX_LINE_CHARS] + " [...]"


def _newest_first(h: _Hits) -> tuple[float, str]:
    try:
        return (-os.stat(h.path).st_mtime, h.path)
    except OSError:
        return (0.0, h.path)
