"""Removing worktrees without losing work, listing them, and bringing them back.

Before any removal, the worktree's uncommitted and untracked (not ignored) work is committed
to `refs/covey/snapshots/<name>/<n>` (always: a clean tree leaves a snapshot equal to its
HEAD, so a ref to the branch tip remains). What covey put there itself (`layout.not_work`:
linked directories, copied files, the personal settings.local.json) is neither work that keeps
a worktree from being pruned nor part of a snapshot. A branch with commits that no other branch, tag
or remote-tracking branch holds is not deleted: removal is refused unless `force`, and then
the snapshot keeps those commits. A locked worktree (a session runs there) is never removed.
`restore` recreates a worktree from its branch (or the snapshot's parent, if the branch was
deleted) and puts the latest snapshot's work back as uncommitted changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from covey.config import WorktreeSettings
from covey.errors import UserError
from covey.git.checkout import add_checkout, resolve_base
from covey.git.layout import (
    Registered,
    Worktree,
    WorktreeHooks,
    not_work,
    read_meta,
    registered,
    worktree_path,
    worktrees_dir,
)
from covey.git.names import branch_for, validate_name
from covey.git.repo import git, git_result
from covey.git.snapshots import (
    SNAPSHOT_PREFIX,
    apply_snapshot,
    is_dirty,
    list_snapshots,
    take_snapshot,
)

__all__ = [
    "PruneReport",
    "RemoveReport",
    "RestoreReport",
    "WorktreeInfo",
    "list_worktrees",
    "prune_worktrees",
    "remove_worktree",
    "restore_worktree",
    "unmerged_commits",
]


@dataclass(frozen=True)
class RemoveReport:
    name: str
    path: Path
    branch: str | None
    """The branch that was checked out; None when detached."""
    snapshot: str
    """The ref holding the worktree's last state (`refs/covey/snapshots/NAME/N`)."""
    dirty: bool
    """Whether there was uncommitted or untracked work (now in the snapshot)."""
    branch_deleted: bool
    unmerged: int
    """Commits on the branch that nothing else held (non-zero only with force)."""


@dataclass(frozen=True)
class WorktreeInfo:
    name: str
    path: Path
    branch: str | None
    base: str | None
    head: str | None
    dirty: bool
    ahead: int
    """Commits on HEAD since the base."""
    size_bytes: int
    """Disk used by the directory (linked directories not followed)."""
    locked_by: str | None
    """The lock's reason ("" for a lock without one); None when not locked."""
    state: str
    """`ok`; `missing` (registered, directory gone); `orphaned` (directory, not registered)."""
    snapshots: int


@dataclass
class PruneReport:
    removed: list[RemoveReport] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    """(name, why) for each worktree left alone."""


@dataclass(frozen=True)
class RestoreReport:
    worktree: Worktree
    snapshot: str | None
    """The snapshot whose work was put back, if any."""
    conflicts: list[str]
    """Files left with conflict markers (the branch moved since the snapshot)."""


def unmerged_commits(root: Path, tip: str, branch: str | None) -> list[str]:
    """`sha subject` of each commit of `tip` that no other branch, tag or remote holds."""
    others = [f"--exclude={branch}"] if branch else []  # relative to refs/heads/
    out = git(
        "log",
        "--format=%h %s",
        tip,
        "--not",
        *others,
        "--branches",
        "--tags",
        "--remotes",
        cwd=root,
    )
    return out.splitlines()


def _entry(root: Path, name: str) -> Registered | None:
    path = worktree_path(root, name)
    return next((e for e in registered(root) if e.path == path), None)


def remove_worktree(
    repo_root: Path,
    name: str,
    *,
    force: bool = False,
    keep_branch: bool = False,
    hooks: WorktreeHooks | None = None,
) -> RemoveReport:
    """Snapshot worktree `name`, then remove it and its branch `worktree-NAME` (see module).
    `keep_branch`: a branch holding commits merged nowhere stays (no error, no `force`)."""
    root, path = repo_root, worktree_path(repo_root, validate_name(name))
    entry = _entry(root, name)
    if entry is None:
        if path.exists():
            raise UserError(f"{path} is not a registered git worktree; nothing removed")
        raise UserError(f"no worktree named {name!r} in {root} (see: covey worktree list)")
    if entry.locked is not None:
        raise UserError(
            f"worktree {name} is locked by {entry.locked or 'someone (no reason given)'}; "
            f"stop that session first, or unlock it: git worktree unlock {path}"
        )
    head = entry.head or git("rev-parse", f"refs/heads/{branch_for(name)}", cwd=root).strip()
    deletes = entry.branch == branch_for(name)  # another branch checked out there stays
    unmerged = unmerged_commits(root, head, entry.branch if deletes else None)
    if unmerged and keep_branch:
        deletes = False
    elif unmerged and not force:
        shown = "; ".join(unmerged[:3]) + ("; …" if len(unmerged) > 3 else "")
        raise UserError(
            f"branch {entry.branch or 'HEAD (detached)'} of worktree {name} has "
            f"{len(unmerged)} commit(s) not merged anywhere ({shown}); merge them first, "
            "or pass --force (a snapshot ref keeps them)"
        )
    meta = read_meta(path)
    links = meta.symlinks if meta else []
    alive = path.is_dir() and not entry.prunable
    dirty = alive and is_dirty(path, exclude=not_work(meta))
    snap = take_snapshot(root, path if alive else None, name, head=head, exclude=not_work(meta))
    if hooks is not None and alive:
        hooks.remove(path)
    for rel in links:
        if (path / rel).is_symlink():
            (path / rel).unlink()
    if alive:
        git("worktree", "remove", "--force", str(path), cwd=root)
    else:
        git("worktree", "prune", cwd=root)
    if deletes:
        git("branch", "-D", branch_for(name), cwd=root)
    return RemoveReport(
        name, path, entry.branch, snap.ref, dirty, deletes, len(unmerged) if deletes else 0
    )


def prune_worktrees(repo_root: Path, *, hooks: WorktreeHooks | None = None) -> PruneReport:
    """Remove every worktree that is clean, merged and unlocked; say why the others stay."""
    report = PruneReport()
    for info in list_worktrees(repo_root, sizes=False):
        why = ""
        if info.state == "orphaned" or info.head is None:
            why = "not a registered git worktree (delete it by hand if it holds nothing)"
        elif info.locked_by is not None:
            why = f"locked by {info.locked_by or 'someone'}"
        elif info.dirty:
            why = "uncommitted changes"
        elif n := len(unmerged_commits(repo_root, info.head, _own_branch(info))):
            why = f"{n} commit(s) not merged anywhere"
        if not why:
            try:
                report.removed.append(remove_worktree(repo_root, info.name, hooks=hooks))
                continue
            except UserError as e:  # it changed meanwhile (locked, committed to)
                why = str(e)
        report.kept.append((info.name, why))
    return report


def _own_branch(info: WorktreeInfo) -> str | None:
    return info.branch if info.branch == branch_for(info.name) else None


def list_worktrees(repo_root: Path, *, sizes: bool = True) -> list[WorktreeInfo]:
    """covey's worktrees of this repository (pooled ones excluded), by name."""
    home = worktrees_dir(repo_root)
    counts: dict[str, int] = {}
    refs = git("for-each-ref", "--format=%(refname)", SNAPSHOT_PREFIX, cwd=repo_root)
    for ref in refs.split():
        owner = ref.removeprefix(SNAPSHOT_PREFIX).rsplit("/", 1)[0]
        counts[owner] = counts.get(owner, 0) + 1
    infos: list[WorktreeInfo] = []
    known: set[str] = set()
    for e in registered(repo_root):
        if e.path.parent != home or e.path.name.startswith("."):
            continue
        known.add(e.path.name)
        infos.append(_describe(repo_root, e, counts.get(e.path.name, 0), sizes))
    if home.is_dir():
        for child in home.iterdir():
            if child.is_dir() and not child.name.startswith(".") and child.name not in known:
                infos.append(
                    WorktreeInfo(
                        name=child.name,
                        path=child,
                        branch=None,
                        base=None,
                        head=None,
                        dirty=False,
                        ahead=0,
                        size_bytes=_disk_usage(child) if sizes else 0,
                        locked_by=None,
                        state="orphaned",
                        snapshots=counts.get(child.name, 0),
                    )
                )
    return sorted(infos, key=lambda i: i.name)


def _describe(root: Path, e: Registered, snapshots: int, sizes: bool) -> WorktreeInfo:
    meta = read_meta(e.path)
    base = meta.base if meta else None
    alive = not e.prunable and e.path.is_dir()
    ahead = 0
    if alive and base and e.head:
        ahead = int(git("rev-list", "--count", f"{base}..{e.head}", cwd=root).strip() or 0)
    return WorktreeInfo(
        name=e.path.name,
        path=e.path,
        branch=e.branch,
        base=base,
        head=e.head,
        dirty=alive and is_dirty(e.path, exclude=not_work(meta)),
        ahead=ahead,
        size_bytes=_disk_usage(e.path) if sizes and alive else 0,
        locked_by=e.locked,
        state="ok" if alive else "missing",
        snapshots=snapshots,
    )


def _disk_usage(path: Path) -> int:
    total = 0
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
        except OSError:
            continue
    return total


def restore_worktree(repo_root: Path, name: str, settings: WorktreeSettings) -> RestoreReport:
    """Recreate worktree `name` from its branch and put its latest snapshot's work back."""
    root, path = repo_root, worktree_path(repo_root, validate_name(name))
    entry = _entry(root, name)
    if entry is not None and not entry.prunable and path.is_dir():
        raise UserError(f"worktree {name} exists at {path}; open it with: covey -w {name}")
    if path.exists():
        raise UserError(f"{path} exists but is not a git worktree; move it away first")
    if entry is not None:
        git("worktree", "prune", cwd=root)
    snaps = list_snapshots(root, name)
    snap = snaps[-1] if snaps else None
    branch = branch_for(name)
    if not git_result("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", cwd=root).ok:
        if snap is None:
            raise UserError(
                f"nothing to restore for {name}: no branch {branch} and no snapshot "
                f"under {SNAPSHOT_PREFIX}{name}/"
            )
        git("branch", "--no-track", branch, snap.head, cwd=root)
    fork = git_result("merge-base", branch, resolve_base(root, settings.baseRef), cwd=root)
    base = fork.stdout.strip() if fork.ok else snap.head if snap else ""
    add_checkout(
        root, path, base=base, settings=settings, branch=branch, new_branch=False, name=name
    )
    conflicts = apply_snapshot(path, snap) if snap else []
    wt = Worktree(name, path, branch, base, root, created=True)
    return RestoreReport(wt, snap.ref if snap else None, conflicts)
