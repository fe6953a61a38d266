"""Walking a tree the way ripgrep does, for Glob and the pure-Python Grep.

`.git` is always skipped and symlinks are not followed (a link could lead out of the
workspace). With `respect_ignores`, `.gitignore`, `.ignore` and `.rgignore` files (in the
tree and in its parent directories) and `.git/info/exclude` are honoured like ripgrep
does with `--hidden --no-require-git --no-ignore-global`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from pathspec import GitIgnoreSpec

from covey.errors import ToolError

__all__ = ["glob_regex", "walk_files"]

_IGNORE_FILES = (".rgignore", ".ignore", ".gitignore")
"""Highest precedence first, as in ripgrep."""

_Rules = list[tuple[Path, list[GitIgnoreSpec]]]
"""(directory, its ignore specs by precedence), outermost directory first."""


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob (`*`, `?`, `[...]`, `**/`, `{a,b}`) to a regex for `fullmatch` on
    `/`-separated relative paths. `*` stays within one path segment."""
    out: list[str] = []
    depth = 0
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        at_segment_start = i == 0 or pattern[i - 1] == "/"
        if pattern.startswith("**", i) and at_segment_start and pattern[i + 2 : i + 3] in ("/", ""):
            out.append("(?:.*/)?" if i + 2 < n else ".*")
            i += 3
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            if body[0] in "!^":
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "," and depth:
            out.append("|")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise ToolError(f"glob {pattern!r} has an unclosed '{{'")
    try:
        return re.compile("".join(out))
    except re.error as e:
        raise ToolError(f"invalid glob {pattern!r}: {e}") from None


def walk_files(root: Path, *, respect_ignores: bool) -> Iterator[Path]:
    """Regular files under `root` in sorted order (or `root` itself when it is a file)."""
    if not root.is_dir():
        yield root
        return
    rules: _Rules = []
    if respect_ignores:
        for parent in reversed(root.parents):
            rules.append((parent, _load_rules(parent)))
    yield from _walk(root, rules, respect_ignores)


def _walk(directory: Path, rules: _Rules, respect_ignores: bool) -> Iterator[Path]:
    if respect_ignores:
        rules = [*rules, (directory, _load_rules(directory))]
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name == ".git" or entry.is_symlink():
            continue
        path = Path(entry.path)
        is_dir = entry.is_dir(follow_symlinks=False)
        if respect_ignores and _ignored(path, is_dir, rules):
            continue
        if is_dir:
            yield from _walk(path, rules, respect_ignores)
        elif entry.is_file(follow_symlinks=False):
            yield path


def _ignored(path: Path, is_dir: bool, rules: _Rules) -> bool:
    """The deepest ignore file with a rule for `path` decides (a `!` rule re-includes)."""
    for base, specs in reversed(rules):
        if not specs:
            continue
        rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
        for spec in specs:
            decision = spec.check_file(rel).include
            if decision is not None:
                return bool(decision)
    return False


def _load_rules(directory: Path) -> list[GitIgnoreSpec]:
    names = [directory / name for name in _IGNORE_FILES]
    if (directory / ".git").is_dir():
        names.append(directory / ".git" / "info" / "exclude")
    specs = []
    for name in names:
        try:
            lines = name.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        specs.append(GitIgnoreSpec.from_lines(lines))
    return specs
