"""File ownership in a team: `owns` globs (gitignore style, relative to the repository root,
read by `pathspec`). A teammate with globs may Write/Edit only inside them; nobody may
Write/Edit inside another member's globs. Overlapping globs are refused at spawn.

Only a live teammate holds its globs: one that ended (completed, failed, stopped) releases
them, to a new teammate's `owns` and to everyone's writes (`holders`)."""

from __future__ import annotations

import itertools
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from pathspec import GitIgnoreSpec

from covey.errors import ToolError
from covey.sessions.state import TERMINAL_STATES
from covey.store import Store
from covey.store.sessions import get_session
from covey.store.teams import LEAD, MemberRow, list_members

__all__ = ["TeamFileOwners", "check_globs", "holders", "overlap"]

_WILD = re.compile(r"\*\*|\*|\?|\[[^\]]*\]")


def check_globs(globs: Sequence[str]) -> GitIgnoreSpec:
    if any(not g.strip() or g.strip().startswith("!") for g in globs):
        raise ToolError("owns: each glob must be non-empty and not a negation (!)")
    try:
        return GitIgnoreSpec.from_lines(globs)
    except (ValueError, TypeError) as e:
        raise ToolError(f"owns: not a gitignore-style glob list: {e}") from None


def _filled(glob: str) -> str:
    return _WILD.sub("x", glob.strip().lstrip("/")).rstrip("/") or "x"


def _samples(a: str, b: str) -> list[str]:
    """Paths glob `a` covers for sure (wildcards filled in, a file below a directory), also
    inside what glob `b` names (`*.md` reaches into `docs/`)."""
    base, leaf = _filled(a), _filled(a).rsplit("/", 1)[-1]
    paths = [base, f"{base}/x", f"{base}/x/x.x"]
    b_leaf = b.strip().rstrip("/").rsplit("/", 1)[-1]
    if b.strip().endswith("/") or b_leaf == "**" or "." not in b_leaf:  # b names a directory
        other = _filled(b)
        paths += [f"{other}/{leaf}", f"{other}/x/{leaf}"]
    return paths


def overlap(mine: Sequence[str], theirs: Sequence[str]) -> tuple[str, str, str] | None:
    """(my glob, their glob, a path both cover) when two glob lists overlap, else None.
    Decided on sample paths of each pair of globs (exact for the usual directory, file and
    extension globs)."""
    for g in mine:
        for t in theirs:
            spec_g, spec_t = GitIgnoreSpec.from_lines([g]), GitIgnoreSpec.from_lines([t])
            for path in [*_samples(g, t), *_samples(t, g)]:
                if spec_g.match_file(path) and spec_t.match_file(path):
                    return g, t, path
    return None


def holders(conn: sqlite3.Connection, members: Sequence[MemberRow]) -> list[MemberRow]:
    """The teammates among `members` that hold their `owns` globs: those with globs whose
    session has not ended."""
    held = []
    for m in members:
        if m.name == LEAD or not m.owns:
            continue
        row = get_session(conn, m.session_id)
        if row is not None and row.state not in TERMINAL_STATES:
            held.append(m)
    return held


class TeamFileOwners:
    """`ToolContext.file_owners` of one member: the team's globs, read from the store on each
    check (a teammate started later counts at once)."""

    def __init__(self, store: Store, team_id: str, name: str, root: Path) -> None:
        self.store, self.team_id, self.name, self.root = store, team_id, name, root.resolve()

    def writable(self) -> list[Path] | None:
        """For the Bash sandbox: the directories this teammate's globs name (a glob's part
        before its first wildcard; a file's directory), made if missing. None (the whole
        workspace) for the lead, a teammate without globs, or a glob that matches at any depth
        (`*.md`)."""
        with self.store.read() as conn:
            me = next((m for m in list_members(conn, self.team_id) if m.name == self.name), None)
        if me is None or me.name == LEAD or not me.owns:
            return None
        dirs = []
        for glob in me.owns:
            parts = glob.strip().strip("/").split("/")
            fixed = list(itertools.takewhile(lambda p: not _WILD.search(p), parts))
            if len(parts) == 1 and not glob.strip().startswith("/") and not glob.endswith("/"):
                return None  # no slash: gitignore matches it in every directory
            if fixed == parts and not glob.strip().endswith("/"):
                fixed = fixed[:-1]  # a file: its directory
            if not fixed:
                return None
            path = self.root.joinpath(*fixed)
            path.mkdir(parents=True, exist_ok=True)
            dirs.append(path)
        return dirs

    def refusal(self, real: Path) -> str | None:
        try:
            rel = real.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None  # outside the repository: no team rule applies
        with self.store.read() as conn:
            members = list_members(conn, self.team_id)
            owners = holders(conn, members)
        for m in owners:
            if m.name != self.name and GitIgnoreSpec.from_lines(m.owns).match_file(rel):
                return (
                    f"{rel} is owned by teammate {m.name} ({', '.join(m.owns)}); "
                    f"ask {m.name} with SendMessage instead"
                )
        me = next((m for m in members if m.name == self.name), None)
        mine = me.owns if me is not None and me.name != LEAD else ()
        if mine and not GitIgnoreSpec.from_lines(mine).match_file(rel):
            return (
                f"{rel} is outside what you own ({', '.join(mine)}); ask its owner or "
                f"{LEAD} with SendMessage"
            )
        return None
