"""Diff a worktree against its base; merge it into the main checkout's current branch.

A merge is computed whole before anything changes: the worktree's uncommitted and untracked
work becomes a commit built in a temporary index (the worktree itself is not touched yet), then
`git merge-tree --write-tree` merges it with the main branch in the object database. On a
conflict nothing has changed anywhere and `MergeConflict` names the files and the other
worktrees that touched them. Only a clean result is applied: the work commit goes onto the
worktree branch, and the main checkout moves with `git merge --ff-only <computed commit>`, so a
merge is never left in progress and the user's checkout is only ever fast-forwarded.

Modes: `merge` (default) fast-forwards when the main branch has not moved since the worktree's
base, else makes a merge commit; `squash` makes one commit whose message lists the worktree's
commits; `rebase` replays the worktree's commits onto the main branch (each pick simulated with
merge-tree, since git 2.39's merge-tree has no `--merge-base`), moves the worktree branch there,
then fast-forwards. The base of a worktree is the commit covey recorded when making it, or
the merge-base of its HEAD and the main HEAD when that is later (see `overlaps.base_args`).
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from covey.errors import MergeConflict, UserError
from covey.git.layout import lock_reason
from covey.git.overlaps import (
    Checkout,
    LiveWorktrees,
    base_args,
    live_worktrees,
    worktree_changes,
)
from covey.git.repo import GitError, git, git_result

__all__ = [
    "ConflictFile",
    "MergeConflict",
    "MergeMode",
    "MergeResult",
    "Outcome",
    "merge_worktree",
    "worktree_base",
    "worktree_diff",
]

MergeMode = Literal["merge", "squash", "rebase"]
Outcome = Literal["up to date", "fast-forward", "merge commit", "squash commit", "rebased"]
_IDENTITY = ("-c", "user.name=covey", "-c", "user.email=covey@localhost")
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_SHOWN_FILES = 5


@dataclass(frozen=True)
class ConflictFile:
    path: str
    touched_by: list[str]
    """Other live worktrees that also changed this path."""


@dataclass(frozen=True)
class MergeResult:
    name: str
    mode: MergeMode
    into: str
    """The main checkout's branch."""
    outcome: Outcome
    old_head: str
    new_head: str
    work_commit: str | None
    """The commit made of the worktree's uncommitted work before merging, if there was any."""


@functools.lru_cache(maxsize=32)
def _identity(cwd: Path) -> tuple[str, ...]:
    """No `-c` flags when the user has an identity; covey's own otherwise (cached per repo)."""
    return () if git_result("var", "GIT_COMMITTER_IDENT", cwd=cwd).ok else _IDENTITY


def _commit(cwd: Path, tree: str, parents: list[str], message: str, **env: str) -> str:
    parent_args = [a for p in parents for a in ("-p", p)]
    args = [*_identity(cwd), "commit-tree", tree, *parent_args]
    return git(*args, cwd=cwd, env=env or None, stdin=message).strip()


def _is_ancestor(a: str, b: str, cwd: Path) -> bool:
    return git_result("merge-base", "--is-ancestor", a, b, cwd=cwd).exit_code == 0


def _tree(commit: str, cwd: Path) -> str:
    return git("rev-parse", f"{commit}^{{tree}}", cwd=cwd).strip()


def _work_tree(wt: Checkout) -> str:
    """The tree of everything in the worktree, untracked files included, built in a copy of
    its index so the worktree's own index is untouched. Untracked files under `.covey/` are
    covey's copy of the project settings, not work, and stay out, as do linked directories."""
    index = Path(git("rev-parse", "--path-format=absolute", "--git-path", "index", cwd=wt.path))
    with tempfile.TemporaryDirectory(prefix="covey-index-") as tmp:
        scratch = Path(tmp) / "index"
        if index.exists():
            shutil.copyfile(index, scratch)
        env = {"GIT_INDEX_FILE": str(scratch)}
        links = [f":(top,exclude,literal){p}" for p in wt.symlinks]
        git("add", "-u", "--", ":/", cwd=wt.path, env=env)  # every tracked file, .covey/ too
        git("add", "-A", "--", ":/", ":(top,exclude).covey", *links, cwd=wt.path, env=env)
        return git("write-tree", cwd=wt.path, env=env).strip()


def _need_heads(repo: LiveWorktrees, wt: Checkout, name: str) -> tuple[str, str]:
    if repo.main.head is None:
        raise UserError(f"the main checkout {repo.main.path} has no commits yet")
    if wt.head is None:
        raise UserError(f"worktree {name!r} has no commits yet")
    return repo.main.head, wt.head


def worktree_base(repo: LiveWorktrees, name: str) -> str:
    """The commit worktree `name` started from (or was last merged at)."""
    wt = repo.get(name)
    main_head, _ = _need_heads(repo, wt, name)
    return git("merge-base", *base_args(wt, main_head), cwd=wt.path).strip()


def worktree_diff(cwd: Path, name: str, *, stat: bool = False) -> str:
    """`git diff` of worktree `name` against its base: committed, uncommitted and untracked."""
    repo = live_worktrees(cwd)
    wt = repo.get(name)
    base = worktree_base(repo, name)
    return git("diff", *(["--stat"] if stat else []), base, _work_tree(wt), cwd=wt.path)


def _merge_tree(cwd: Path, ours: str, theirs: str) -> tuple[str, list[str]]:
    """The merged tree and the conflicting paths (empty when clean)."""
    args = ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs]
    result = git_result(*args, cwd=cwd)
    if result.exit_code not in (0, 1):
        raise GitError(f"git merge-tree failed in {cwd}: {result.stderr.strip()}")
    tree, *rest = result.stdout.split("\0")
    files = list(dict.fromkeys(p for p in rest if p)) if result.exit_code else []
    return tree, files


def _conflict(repo: LiveWorktrees, name: str, into: str, paths: list[str], step: str = "") -> None:
    changes = worktree_changes(repo)
    files = [
        ConflictFile(p, sorted(n for n, ch in changes.items() if n != name and p in ch))
        for p in paths
    ]
    raise MergeConflict(name, into, files, step)


def _pick(cwd: Path, base: str, ours: str, theirs: str) -> tuple[str, list[str]]:
    """Cherry-pick as a 3-way merge of trees: synthetic commits with `base` as their one
    merge base make `git merge-tree` (no --merge-base in git 2.39) do exactly that."""
    root = _commit(cwd, base, [], "covey pick base")
    return _merge_tree(
        cwd, _commit(cwd, ours, [root], "ours"), _commit(cwd, theirs, [root], "theirs")
    )


def _rebase(repo: LiveWorktrees, name: str, into: str, onto: str, tip: str) -> str:
    """The worktree's commits replayed onto `onto` (merges dropped, emptied commits skipped),
    as new commits with their authors and messages; raises MergeConflict on the first conflict."""
    cwd = repo.main.path
    fmt = "%H%x01%T%x01%P%x01%an%x01%ae%x01%ad%x01%s%x01%B"
    args = ["log", "-z", "--reverse", "--no-merges", "--date=raw", f"--format={fmt}"]
    log = git(*args, f"{onto}..{tip}", cwd=cwd)
    trees: dict[str, str] = {}
    new, new_tree = onto, _tree(onto, cwd)
    for record in filter(None, log.split("\0")):
        sha, tree, parents, author, email, date, subject, body = record.split("\x01", 7)
        parent = parents.split()[0] if parents else None
        base = trees.get(parent or "") or (_tree(parent, cwd) if parent else _EMPTY_TREE)
        trees[sha] = tree
        merged, conflicts = _pick(cwd, base, new_tree, tree)
        if conflicts:
            _conflict(repo, name, into, conflicts, f"commit {sha[:10]} ({subject!r})")
        if merged == new_tree:
            continue
        author_env = {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date}
        new, new_tree = _commit(cwd, merged, [new], body, **author_env), merged
    return new


def _refuse_dirty(main: Checkout, name: str) -> None:
    out = git("status", "--porcelain", "-z", "-uno", "--no-renames", cwd=main.path)
    dirty = [e[3:] for e in out.split("\0") if len(e) > 3]
    if dirty:
        raise UserError(
            f"the main checkout {main.path} has uncommitted changes in {_some(dirty)}: "
            f"commit or stash them, then run `covey merge {name}` again"
        )


def _refuse_collisions(main: Checkout, old: str, new: str) -> None:
    """Untracked files in the main checkout that the merge would overwrite."""
    added = git("diff", "--name-only", "-z", "--diff-filter=A", old, new, cwd=main.path)
    hit = [p for p in added.split("\0") if p and os.path.lexists(main.path / p)]
    if hit:
        raise UserError(
            f"untracked files in the main checkout {main.path} would be overwritten: "
            f"{_some(hit)}; move them away, then merge again"
        )


def _some(paths: list[str]) -> str:
    more = len(paths) - _SHOWN_FILES
    return ", ".join(paths[:_SHOWN_FILES]) + (f" and {more} more" if more > 0 else "")


def _squash_message(cwd: Path, name: str, branch: str, old: str, tip: str) -> str:
    subjects = git("log", "--reverse", "--format=* %s", f"{old}..{tip}", cwd=cwd).splitlines()
    head = f"Squash worktree {name} (branch {branch}): {len(subjects)} commit(s)"
    return head + "\n\n" + "\n".join(subjects) + "\n"


def merge_worktree(
    cwd: Path, name: str, mode: MergeMode = "merge", *, force: bool = False
) -> MergeResult:
    """Merge worktree `name` into the main checkout's current branch (see the module doc).
    A locked worktree (a live session works there) is refused unless `force`."""
    repo = live_worktrees(cwd)
    main, wt = repo.main, repo.get(name)
    locked = lock_reason(wt.path)
    if locked is not None and not force:
        raise UserError(
            f"worktree {name} is locked by {locked or 'someone (no reason given)'}: its work "
            "may be half done; stop that session first, or pass --force"
        )
    old, head = _need_heads(repo, wt, name)
    if main.branch is None:
        raise UserError(f"the main checkout {main.path} is on a detached HEAD; check out a branch")
    if wt.branch is None:
        raise UserError(f"worktree {name!r} is on a detached HEAD; check out its branch")
    into = main.branch
    _refuse_dirty(main, name)
    work_tree = _work_tree(wt)
    work = None
    if work_tree != _tree(head, main.path):
        msg = f"covey: uncommitted work in worktree {name}\n"
        work = _commit(main.path, work_tree, [head], msg)
    tip = work or head
    result = MergeResult(name, mode, into, "up to date", old, old, None)
    if _is_ancestor(tip, old, main.path):
        return result
    fast = _is_ancestor(old, tip, main.path)
    outcome: Outcome = "fast-forward" if fast else "merge commit"
    if mode == "rebase":
        new = tip if fast else _rebase(repo, name, into, old, tip)
        if new == old:  # every commit was already on the main branch
            return result
        outcome = "fast-forward" if fast else "rebased"
    else:
        tree, conflicts = _merge_tree(main.path, old, tip)
        if conflicts:
            _conflict(repo, name, into, conflicts)
        if mode == "squash":
            if tree == _tree(old, main.path):
                return result
            message = _squash_message(main.path, name, wt.branch, old, tip)
            new, outcome = _commit(main.path, tree, [old], message), "squash commit"
        else:
            message = f"Merge worktree {name} (branch {wt.branch}) into {into}\n"
            new = tip if fast else _commit(main.path, tree, [old, tip], message)
    _refuse_collisions(main, old, new)
    if work:
        ref = f"refs/heads/{wt.branch}"
        git("update-ref", "-m", "covey: commit uncommitted work", ref, work, head, cwd=wt.path)
        git("reset", "-q", cwd=wt.path)
    if mode == "rebase" and new != tip:
        git("reset", "-q", "--keep", new, cwd=wt.path)
    git("merge", "--ff-only", "-q", new, cwd=main.path)
    return MergeResult(name, mode, into, outcome, old, new, work)
