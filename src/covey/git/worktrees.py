"""Worktrees for `covey -w [NAME]`: open (create or reopen), lock, and the `.gitignore` hint.

`.covey/worktrees/NAME` on branch `worktree-NAME`, from the base `worktree.baseRef` names
(see `checkout`). A name already in use reopens that worktree. With a WorktreeCreate hook,
the hook makes the worktree instead (and `.worktreeinclude` is not applied, as in Claude
Code). With `worktree.pool`, a warm tree is claimed instead of checking out (see `pool`).
Removal, pruning, listing and restoring are in `cleanup`; everything is re-exported here.
"""

from __future__ import annotations

import time
from pathlib import Path

from covey.config import WorktreeSettings
from covey.errors import UserError
from covey.git.checkout import add_checkout, resolve_base
from covey.git.cleanup import (
    PruneReport,
    RemoveReport,
    RestoreReport,
    WorktreeInfo,
    list_worktrees,
    prune_worktrees,
    remove_worktree,
    restore_worktree,
)
from covey.git.layout import (
    Worktree,
    WorktreeHooks,
    admin_dir,
    read_meta,
    registered,
    worktree_path,
    worktrees_dir,
)
from covey.git.names import branch_for, generate_name, validate_name
from covey.git.pool import claim_pooled, refill_pool
from covey.git.repo import (
    WORKTREE_RETRIES,
    GitError,
    find_repo,
    git,
    git_result,
    is_transient_worktree_error,
)

__all__ = [
    "PruneReport",
    "RemoveReport",
    "RestoreReport",
    "Worktree",
    "WorktreeHooks",
    "WorktreeInfo",
    "find_repo",
    "gitignore_hint",
    "list_worktrees",
    "lock_worktree",
    "open_worktree",
    "prune_worktrees",
    "refill_pool",
    "remove_worktree",
    "restore_worktree",
    "unlock_worktree",
]


def open_worktree(
    cwd: Path,
    name: str | None,
    settings: WorktreeSettings,
    *,
    hooks: WorktreeHooks | None = None,
    base: str | None = None,
    repo: Path | None = None,
) -> Worktree:
    """Create worktree `name` (a made-up one when None), or reopen it if it exists. `base`:
    the commit to start from (default: `settings.baseRef` resolved now); `repo`: the main
    checkout when the caller knows it already (default: the one holding `cwd`). A creation
    that met another one's half-made admin directory is tried again."""
    for attempt in range(WORKTREE_RETRIES):
        try:
            return _open_worktree(cwd, name, settings, hooks=hooks, base=base, repo=repo)
        except GitError as e:
            if attempt == WORKTREE_RETRIES - 1 or not is_transient_worktree_error(str(e)):
                raise
            time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _open_worktree(
    cwd: Path,
    name: str | None,
    settings: WorktreeSettings,
    *,
    hooks: WorktreeHooks | None,
    base: str | None,
    repo: Path | None,
) -> Worktree:
    root = repo or find_repo(cwd)
    if name is not None and base is not None and hooks is None and settings.pool == 0:
        added = _add_new(root, name, base, settings)
        if added is not None:
            return added
    entries = {e.path: e for e in registered(root)}
    if name is None:
        branches = set(
            git("for-each-ref", "--format=%(refname:short)", "refs/heads/", cwd=root).split()
        )
        name = generate_name(lambda n: branch_for(n) in branches or worktree_path(root, n).exists())
    validate_name(name)
    path = worktree_path(root, name)
    entry = entries.get(path)
    if entry is not None and not entry.prunable and path.is_dir():
        meta = read_meta(path)
        base = meta.base if meta else (entry.head or "")
        return Worktree(name, path, entry.branch or "", base, root, created=False)
    if hooks is not None and (made := hooks.create(name)) is not None:
        return _from_hook(root, name, made)
    if entry is not None:  # registered, but its directory is gone: forget it, keep the branch
        git("worktree", "prune", cwd=root)
    if path.is_symlink() or (path.exists() and (not path.is_dir() or any(path.iterdir()))):
        raise UserError(
            f"{path} exists but is not a git worktree (left over?); "
            "move it away or delete it, or pick another name"
        )
    branch = branch_for(name)
    base = base or resolve_base(root, settings.baseRef)
    if git_result("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", cwd=root).ok:
        fork = git_result("merge-base", branch, base, cwd=root)
        meta = add_checkout(
            root,
            path,
            base=fork.stdout.strip() if fork.ok else base,
            settings=settings,
            branch=branch,
            new_branch=False,
            name=name,
        )
        return Worktree(name, path, branch, meta.base, root, created=True)
    if settings.pool > 0 and (claimed := claim_pooled(root, name, settings, base=base)):
        return claimed
    add_checkout(root, path, base=base, settings=settings, branch=branch, name=name)
    return Worktree(name, path, branch, base, root, created=True)


def _add_new(root: Path, name: str, base: str, settings: WorktreeSettings) -> Worktree | None:
    """The common case made cheap (a background session's new worktree): nothing at the
    path, so add it at once without listing worktrees or looking the branch up first. None
    when git refuses (the branch exists, a stale registration…): the full way decides."""
    path = worktree_path(root, validate_name(name))
    if path.exists() or path.is_symlink():
        return None
    branch = branch_for(name)
    try:
        add_checkout(root, path, base=base, settings=settings, branch=branch, name=name)
    except GitError:
        return None
    return Worktree(name, path, branch, base, root, created=True)


def _from_hook(root: Path, name: str, made: Path) -> Worktree:
    path = made if made.is_absolute() else root / made
    if not path.is_dir():
        raise UserError(f"the WorktreeCreate hook printed {str(made)!r}, which is not a directory")
    head = git_result("symbolic-ref", "--quiet", "--short", "HEAD", cwd=path)
    return Worktree(name, path, head.stdout.strip() if head.ok else "", "", root, created=True)


def gitignore_hint(repo_root: Path) -> str | None:
    """A suggestion to ignore `.covey/worktrees/`, or None when it is ignored already."""
    rel = worktrees_dir(repo_root).relative_to(repo_root).as_posix() + "/"
    if git_result("check-ignore", "--quiet", rel, cwd=repo_root).ok:
        return None
    return (
        f"add '{rel}' to {repo_root / '.gitignore'} so that the worktrees inside it are not "
        "picked up by git status or git add in the main checkout"
    )


def lock_worktree(wt: Worktree, reason: str) -> None:
    """Lock it as `git worktree lock --reason` does (the `locked` file in git's private
    directory for it, gitrepository-layout(5)), without a git process: while it holds, git
    will not prune it and covey refuses to remove it. Locking again with the same reason is a
    no-op; another holder is a UserError."""
    admin = admin_dir(wt.path)
    if admin is None or not admin.is_dir():
        raise UserError(f"cannot lock worktree {wt.name}: {wt.path} is not a linked git worktree")
    lock = admin / "locked"
    for _ in range(3):  # the holder may unlock between our two looks
        try:
            with lock.open("x", encoding="utf-8") as handle:
                handle.write(f"{reason}\n")
            return
        except FileExistsError:
            pass
        try:
            holder = lock.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            continue
        if holder == reason:
            return
        raise UserError(
            f"worktree {wt.name} is already locked by {holder or 'someone (no reason)'}"
        )
    raise UserError(f"cannot lock worktree {wt.name}: its lock keeps changing hands")


def unlock_worktree(wt: Worktree) -> None:
    """`git worktree unlock`, without a git process; not locked (or gone) is fine."""
    admin = admin_dir(wt.path)
    if admin is not None:
        (admin / "locked").unlink(missing_ok=True)
