"""Worktree names: checked before anything touches disk, or made up when none is given.

A name becomes a directory (`.covey/worktrees/NAME`) and a branch (`worktree-NAME`), so it
must be a single path component that git accepts in a branch name and that no shell or
command line can mistake for something else: ASCII letters, digits, `-`, `_` and `.`, not
starting with `-` or `.`, without `..`, not ending in `.` or `.lock`, at most 100 characters.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from covey.errors import UserError

__all__ = ["BRANCH_PREFIX", "MAX_NAME_LENGTH", "branch_for", "generate_name", "validate_name"]

BRANCH_PREFIX = "worktree-"
MAX_NAME_LENGTH = 100

_ALLOWED = re.compile(r"[A-Za-z0-9._-]+")
_HOW = "use ASCII letters, digits, '-', '_' or '.'"

_ADJECTIVES = (
    "bright", "calm", "eager", "gentle", "keen", "lucky", "merry", "nimble", "quiet", "rapid",
    "steady", "swift", "tidy", "bold", "brave", "clever", "fresh", "happy", "jolly", "sunny",
)  # fmt: skip
_VERBS = (
    "running", "jumping", "singing", "dancing", "flying", "hopping", "diving", "roaming",
    "sailing", "climbing", "drifting", "gliding", "racing", "skating", "wading", "humming",
)  # fmt: skip
_NOUNS = (
    "fox", "otter", "heron", "badger", "falcon", "lynx", "panda", "robin", "seal", "wren",
    "bison", "crane", "gecko", "koala", "moose", "newt", "orca", "puffin", "tapir", "yak",
)  # fmt: skip


def validate_name(name: str) -> str:
    """Return `name` if it can name a worktree; raise a one-line UserError saying why not."""
    bad = _problem(name)
    if bad:
        raise UserError(f"invalid worktree name {name!r}: {bad}; {_HOW}")
    return name


def _problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"it is longer than {MAX_NAME_LENGTH} characters"
    if "/" in name or "\\" in name:
        return "it holds a path separator"
    if ".." in name:
        return "it holds '..'"
    if name.startswith((".", "-")):
        return f"it starts with {name[0]!r}"
    if name.endswith((".", ".lock")):
        return "it ends with '.' or '.lock'"
    if name.startswith("="):
        return "it starts with '=' (write -w NAME or --worktree=NAME, not -w=NAME)"
    if not _ALLOWED.fullmatch(name):
        bad = next(ch for ch in name if not _ALLOWED.fullmatch(ch))
        return "it holds a space" if bad == " " else f"it holds {bad!r}"
    return None


def branch_for(name: str) -> str:
    """The branch of worktree `name`."""
    return BRANCH_PREFIX + name


def generate_name(taken: Callable[[str], bool], rng: random.Random | None = None) -> str:
    """A fresh `adjective-verb-noun` name for which `taken(name)` is False."""
    pick = rng or random.Random()
    for attempt in range(50):
        name = "-".join(pick.choice(words) for words in (_ADJECTIVES, _VERBS, _NOUNS))
        if attempt >= 10:
            name += f"-{pick.randrange(1000, 10000)}"
        if not taken(name):
            return name
    raise UserError("could not make up a free worktree name; pass one: covey -w NAME")
