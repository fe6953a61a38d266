"""The worktrees of a session's tree on a Ray node: the session's own and its children's
(`isolation: worktree`: a subagent's, a teammate's), each shipped to its branch in the
user's repository, each surviving the node's loss.

On the node (`ray_node.NodeSessions`)::

    worktrees = NodeWorktrees(node_store, sid, dest, parent)   # the session's worktree
    restore_children(base_repo, job.children, worktrees)       # a resumed tree's, first
    ToolGate(node_store, sid, worktrees.snapshot)              # after each tool batch

A child makes its worktree on the node as on the user's machine (`open_worktree` from the
node's base repository, a main checkout: `.covey/worktrees/NAME` on branch
`worktree-NAME`, the name a local run gives it). After every tool batch of the tree,
`snapshot` commits each worktree that changed on its own chain of snapshots; a child's
snapshot carries its branch (`ChildSnapshot`), so the gate journals them all before the
batch's results.

On the supervisor (`ray_pump`)::

    receiver = SnapshotReceiver(repo, branch, worktree, base)
    apply(store, sid, epoch, batch, receiver)     # each snapshot onto its branch
    receiver.finish()                             # the local worktrees follow their branches

A child's branch is made at its first snapshot's parent (the base it forked from), then
moves by compare-and-swap as the session's does; when the run ends its local worktree
`.covey/worktrees/NAME` is made (or checked out again) at the branch, so `covey diff NAME`
and `covey merge NAME` work as for a local run. When the session moves to another node,
each child branch travels with it (`child_worktrees`: its work since its base, a thin
bundle) and `restore_children` makes the child's worktree there at the branch's tip.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from covey.config import WorktreeSettings, load_settings
from covey.errors import GitError, UserError
from covey.executors.replica_records import SnapshotRecord
from covey.git.bundles import ShippedSnapshot, pack_progress, receive_snapshot
from covey.git.bundles import snapshot_for_shipping as ship
from covey.git.layout import read_meta, worktree_path
from covey.git.names import BRANCH_PREFIX, validate_name
from covey.git.repo import git, git_result
from covey.git.worktrees import open_worktree
from covey.store import Store
from covey.store.replica_tree import tree_ids
from covey.store.sessions import get_session

__all__ = [
    "ChildSnapshot",
    "ChildWorktree",
    "NodeWorktrees",
    "SnapshotReceiver",
    "child_worktrees",
    "restore_children",
]

log = logging.getLogger("covey.executors.ray")


@dataclass(frozen=True)
class ChildSnapshot:
    """A snapshot of a child's own worktree, for its branch."""

    sha: str
    parent: str
    bundle: bytes
    branch: str


@dataclass(frozen=True)
class ChildWorktree:
    """A child's own worktree, travelling with a session resumed on another node."""

    name: str
    branch: str
    progress: ShippedSnapshot
    """The branch's work since its base (`parent`: the base, `sha`: the branch's tip)."""


@dataclass
class NodeWorktrees:
    """The node's worktrees of one tree, each with the last snapshot shipped of it."""

    node_store: Store
    session_id: str
    worktree: Path
    parent: str
    parents: dict[Path, str] = field(default_factory=dict)
    """A child's worktree → its last snapshot shipped (its base until then)."""

    def snapshot(self) -> list[ShippedSnapshot | ChildSnapshot]:
        """Commit and bundle each worktree of the tree that changed since its last snapshot."""
        message = f"covey {self.session_id}: step"
        out: list[ShippedSnapshot | ChildSnapshot] = []
        if (snap := ship(self.worktree, self.parent, message)) is not None:
            self.parent = snap.sha
            out.append(snap)
        for path, branch in self._children():
            parent = self.parents.get(path) or _base_of(path)
            if parent and (snap := ship(path, parent, message)) is not None:
                self.parents[path] = snap.sha
                out.append(ChildSnapshot(snap.sha, snap.parent, snap.bundle, branch))
        return out

    def remove_children(self) -> None:
        """Remove the children's worktrees this tree made here (the session is done here)."""
        for path in [p for p, _ in self._children()] + list(self.parents):
            if path.is_dir():
                git_result("worktree", "remove", "--force", "--force", str(path), cwd=path.parent)

    def _children(self) -> list[tuple[Path, str]]:
        """The children's own worktrees on this node, with their branches."""
        with self.node_store.read() as conn:
            rows = [get_session(conn, i) for i in tree_ids(conn, self.session_id)[1:]]
        found = []
        for row in rows:
            if row is None or not row.meta.worktree or not row.meta.branch:
                continue
            path = Path(row.meta.worktree)
            if path != self.worktree and path.is_dir():
                found.append((path, row.meta.branch))
        return found


def _base_of(worktree: Path) -> str:
    meta = read_meta(worktree)
    if meta is not None and meta.base:
        return meta.base
    head = git_result("rev-parse", "HEAD", cwd=worktree)
    return head.stdout.strip() if head.ok else ""


def restore_children(
    base_repo: Path, children: Sequence[ChildWorktree], worktrees: NodeWorktrees
) -> None:
    """Make each child's worktree in the node's `base_repo` at its branch's tip (a session
    resumed here), its snapshots going on from there."""
    for child in children:
        progress = child.progress
        old = worktree_path(base_repo, child.name)
        if old.exists():  # an earlier run of the tree here: the branch's tip wins
            git("worktree", "remove", "--force", "--force", str(old), cwd=base_repo)
        git("update-ref", f"refs/heads/{child.branch}", progress.parent, cwd=base_repo)
        if progress.sha != progress.parent:
            receive_snapshot(base_repo, child.branch, progress)
        made = open_worktree(
            base_repo, child.name, WorktreeSettings(), base=progress.parent, repo=base_repo
        )
        worktrees.parents[made.path] = progress.sha


def child_worktrees(store: Store, session_id: str, repo: Path) -> tuple[ChildWorktree, ...]:
    """The own worktrees of `session_id`'s children whose branches are in `repo`, with their
    work since their bases (`repo`'s `.covey/worktrees/NAME`, branch `worktree-NAME`)."""
    with store.read() as conn:
        ids = tree_ids(conn, session_id)
        rows = [get_session(conn, i) for i in ids[1:]]
        root = get_session(conn, session_id)
    base = root.meta.base if root is not None else None
    out = []
    for row in rows:
        branch = row.meta.branch if row is not None else None
        if not base or not branch or not branch.startswith(BRANCH_PREFIX):
            continue
        if not _tip(repo, branch):
            continue
        fork = git_result("merge-base", base, f"refs/heads/{branch}", cwd=repo)
        if fork.ok:
            progress = pack_progress(repo, fork.stdout.strip(), branch)
            out.append(ChildWorktree(branch.removeprefix(BRANCH_PREFIX), branch, progress))
    return tuple(out)


def _tip(repo: Path, branch: str) -> str:
    found = git_result("rev-parse", "-q", "--verify", f"refs/heads/{branch}", cwd=repo)
    return found.stdout.strip() if found.ok else ""


class SnapshotReceiver:
    """The supervisor's `on_snapshot`: each snapshot onto its branch in `repo` (the
    session's, or a child's: made at the snapshot's parent when missing); `finish` checks
    out what the branches now hold in their local worktrees."""

    def __init__(self, repo: Path, branch: str, worktree: Path, base: str | None) -> None:
        self.repo, self.branch, self.worktree, self.base = repo, branch, worktree, base
        self.received: set[str] = set()

    def __call__(self, record: SnapshotRecord) -> None:
        branch = record.branch or self.branch
        if branch != self.branch:  # a child's: only a worktree's branch, never `main` or such
            if not branch.startswith(BRANCH_PREFIX):
                raise UserError(f"a node's snapshot names branch {branch!r}, not a worktree's")
            validate_name(branch.removeprefix(BRANCH_PREFIX))
        if branch != self.branch and not _tip(self.repo, branch):
            git("update-ref", f"refs/heads/{branch}", record.parent, "", cwd=self.repo)
        snap = ShippedSnapshot(record.sha, record.parent, record.bundle)
        receive_snapshot(self.repo, branch, snap)
        if branch not in self.received and branch != self.branch:
            self._child_worktree(branch, follow=False)  # `covey diff NAME` works from now on
        self.received.add(branch)

    def finish(self) -> None:
        """The local worktrees follow their branches (a child's made if missing)."""
        for branch in sorted(self.received):
            if branch == self.branch:
                _follow(self.worktree)
                continue
            self._child_worktree(branch)

    def _child_worktree(self, branch: str, *, follow: bool = True) -> None:
        """The child's local worktree at its branch: made if missing, else (`follow`)
        checked out at the branch's tip. A failure is logged: the branch has the work."""
        try:
            self._local_worktree(branch, follow)
        except (GitError, UserError) as e:
            log.warning("no local worktree for %s: %s", branch, e)

    def _local_worktree(self, branch: str, follow: bool) -> None:
        name = branch.removeprefix(BRANCH_PREFIX)
        path = worktree_path(self.repo, name)
        if path.is_dir():
            if follow:
                _follow(path)
        else:
            settings = load_settings(self.repo).settings.worktree
            open_worktree(self.repo, name, settings, base=self.base, repo=self.repo)


def _follow(worktree: Path) -> None:
    git("reset", "-q", "--hard", "HEAD", cwd=worktree)
