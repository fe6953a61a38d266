"""The workspace travels by git: a session's start to another machine, its work back.

On the supervisor (the user's machine)::

    pack_workspace(repo: Path, commit: str, *, skip: Sequence[str] = ()) -> WorkspacePack
        # a bundle holding `commit` and its history, plus the `.worktreeinclude` files
        # (not looked for under the directories `skip`); the same bytes for the same commit
    pack_progress(repo: Path, base: str, branch: str) -> ShippedSnapshot
        # the branch's work since `base` (snapshots, agent commits), thin, to resume elsewhere
    receive_snapshot(repo: Path, branch: str, snap: ShippedSnapshot) -> None
        # fetch a node's snapshot and move `branch` from snap.parent to snap.sha
        # (compare-and-swap: StaleSnapshot if `branch` is elsewhere; BundleError if damaged)

On a node::

    unpack_workspace(pack, dest: Path, branch: str, *, cache_dir: Path | None = None,
                     resume: ShippedSnapshot | None = None) -> Path
        # a worktree at `dest` with `branch` checked out at pack.base (or at resume.sha, the
        # last snapshot received, from `pack_progress`), include files in place
    snapshot_for_shipping(worktree: Path, parent: str, message: str) -> ShippedSnapshot | None
        # a commit of the whole working tree (untracked, non-ignored files too) on `parent`,
        # and a thin bundle parent..sha; None when nothing changed since `parent`
    drop_workspace(dest: Path) -> None
        # remove a worktree unpack_workspace made, and its branch

A snapshot's first parent is `parent` (the previous snapshot shipped, or the base); when the
agent committed on its own (its HEAD is not in `parent`'s history), that HEAD is the second
parent, so its commits and messages reach the user too. The worktree's index, HEAD and files
are never touched: the tree comes from an index of covey's own (`covey.git.shipping`). To resume
a session on another node, ship `pack_progress` with its base pack: the worktree starts at
the last snapshot received (HEAD there, so the next snapshot has it as its only parent).

Costs, for many sessions from one base: the supervisor bundles each base commit once and keeps
the bundle in `<git common dir>/covey/bundles/<sha>.bundle` (the newest `KEEP_BUNDLES`); a
node unbundles each base once into a repository `<cache_dir>/<sha>.git` (a main checkout with
nothing checked out, its git directory in `.git`) and makes every session's worktree from it
with `git worktree add` (so a second unpack of a base on a node is one checkout; its objects
are shared). A snapshot's bundle is thin: only the objects its
parent lacks, so a 3-file edit ships about 1 KiB however big the repository is
(`bench/cluster_ship.py`). An executor should `ray.put` one pack per base, not one per session.

Errors: `StaleSnapshot` (the branch moved: a zombie host's snapshot; drop it), `BundleError`
(damaged in transit: ship it again), `GitError` otherwise (e.g. the branch's ref was locked
by a concurrent git command: retry).

Include files are read into the pack as bytes: regular files only (symlinks and files whose
name is not UTF-8 are left out), without their mode bits.

Bundles are verified on arrival by `git bundle unbundle` (index-pack checks the pack's
checksum and that the prerequisites are present): a bundle damaged in transit raises
`BundleError` and no ref moves.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from covey.errors import GitError
from covey.git import shipping
from covey.git.include import matching_ignored_files
from covey.git.layout import common_dir, registered
from covey.git.repo import git, git_result

__all__ = [
    "KEEP_BUNDLES",
    "BundleError",
    "ShippedSnapshot",
    "StaleSnapshot",
    "WorkspacePack",
    "drop_workspace",
    "pack_progress",
    "pack_workspace",
    "receive_snapshot",
    "snapshot_for_shipping",
    "unpack_workspace",
]

KEEP_BUNDLES = 4
"""Base bundles kept on the supervisor's disk per repository (the newest used)."""
_PACK_TIMEOUT_S = 900.0
_SHIP_REF = "refs/covey/ship/"
_BASE_REF = "refs/covey/base"


class BundleError(GitError):
    """A bundle git refuses: damaged in transit, or not holding what it claims."""


class StaleSnapshot(GitError):
    """The branch is no longer at the snapshot's parent (another host moved it): not applied."""


@dataclass(frozen=True)
class WorkspacePack:
    """What a node needs to start a session: picklable, goes through Ray's object store."""

    base: str
    """The commit the session starts from."""
    bundle: bytes = field(repr=False)
    """A git bundle holding `base` and its history."""
    include: dict[str, bytes] = field(default_factory=dict, repr=False)
    """The `.worktreeinclude` files: path relative to the repository root -> contents."""


@dataclass(frozen=True)
class ShippedSnapshot:
    """A snapshot of a node's worktree on its way to the user's repository."""

    sha: str
    parent: str
    bundle: bytes = field(repr=False)
    """A thin bundle: the objects of parent..sha, with `parent` as prerequisite."""


# --- the supervisor side -------------------------------------------------------------------


def pack_workspace(repo: Path, commit: str, *, skip: Sequence[str] = ()) -> WorkspacePack:
    """Pack `commit` of `repo` and its `.worktreeinclude` files (not looking into the
    directories `skip`, like linked node_modules). The bundle is made once per commit."""
    sha = git("rev-parse", "--verify", "--end-of-options", f"{commit}^{{commit}}", cwd=repo)
    sha = sha.strip()
    return WorkspacePack(sha, _base_bundle(repo, sha), _include_files(repo, skip))


def _base_bundle(repo: Path, sha: str) -> bytes:
    cache = common_dir(repo) / "covey" / "bundles"
    path = cache / f"{sha}.bundle"
    with contextlib.suppress(FileNotFoundError):
        data = path.read_bytes()
        os.utime(path)  # the newest used is kept longest
        return data
    with _flock(cache / "pack.lock"):  # one pack at a time: each is CPU-bound
        if not path.exists():
            tmp = cache / f"{sha}.bundle.{os.getpid()}.tmp"
            _bundle(repo, tmp, sha)
            os.replace(tmp, path)
            bundles = sorted(cache.glob("*.bundle"), key=lambda p: p.stat().st_mtime_ns)
            for old in bundles[:-KEEP_BUNDLES]:
                old.unlink(missing_ok=True)
        return path.read_bytes()


def _include_files(repo: Path, skip: Sequence[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for rel in matching_ignored_files(repo, list(skip)):
        path = repo / rel
        try:
            if stat.S_ISREG(path.lstat().st_mode):
                found[rel] = path.read_bytes()
        except OSError:
            continue  # gone meanwhile, or a name git could not give us intact
    return found


def pack_progress(repo: Path, base: str, branch: str) -> ShippedSnapshot:
    """The work on `branch` since `base` as a thin bundle (sha: the branch's tip, parent:
    `base`), for `unpack_workspace(..., resume=…)`: a session resumed on another node starts
    from its last snapshot while the node's base repository is reused."""
    tip = git("rev-parse", "--verify", "--end-of-options", f"refs/heads/{branch}", cwd=repo)
    tip = tip.strip()
    if tip == base:  # nothing done yet (git refuses an empty bundle)
        return ShippedSnapshot(tip, base, b"")
    return ShippedSnapshot(tip, base, shipping.thin_bundle(repo, tip, base))


def receive_snapshot(repo: Path, branch: str, snap: ShippedSnapshot) -> None:
    """Fetch `snap` into `repo` and move `branch` to it if the branch is at `snap.parent`.

    Receiving the same snapshot twice is harmless (a retried delivery). Raises StaleSnapshot
    when the branch is elsewhere (or missing), BundleError when the bundle is damaged or is
    not a snapshot on `snap.parent`; either way the branch has not moved."""
    ref = f"refs/heads/{branch}"
    scratch = common_dir(repo) / "covey"
    parents = _unbundle(repo, snap.bundle, snap.sha, scratch=scratch, parents=True)
    first_parent = parents[0] if parents else ""
    if first_parent != snap.parent:
        raise BundleError(
            f"the snapshot {snap.sha[:12]} for {branch} is not on {snap.parent[:12]}"
            f" (its parent is {first_parent[:12] if first_parent else 'none'}); not applied"
        )
    moved = git_result("update-ref", "-m", "covey: snapshot", ref, snap.sha, snap.parent, cwd=repo)
    if not moved.ok:
        now = _resolve(repo, ref)
        if now == snap.sha:  # received before (a retried delivery)
            return
        if now == snap.parent:  # not stale: the ref was locked (a concurrent pack-refs, gc)
            raise GitError(f"cannot move {branch} to {snap.sha[:12]}: {moved.stderr.strip()}")
        where = f"at {now[:12]}" if now else "missing"
        raise StaleSnapshot(
            f"branch {branch} is {where}, not at {snap.parent[:12]}: snapshot {snap.sha[:12]}"
            " not applied"
        )


# --- the node side -------------------------------------------------------------------------


def unpack_workspace(
    pack: WorkspacePack,
    dest: Path,
    branch: str,
    *,
    cache_dir: Path | None = None,
    resume: ShippedSnapshot | None = None,
) -> Path:
    """Make `dest` a worktree with `branch` checked out at `pack.base` (or at `resume.sha`,
    see `pack_progress`) and the include files in place; return `dest`. The base is
    unbundled once per node into `<cache_dir>/<base>.git` (default: `<dest's
    parent>/.covey-bases`). Calling it again for a `dest` that already has `branch` checked
    out changes nothing."""
    dest = dest.absolute()
    include = _include_targets(dest, pack.include)
    base_repo = _base_repository(cache_dir or dest.parent / ".covey-bases", pack)
    start = pack.base
    if resume is not None and resume.sha != pack.base:
        _unbundle(base_repo, resume.bundle, resume.sha, scratch=base_repo)
        start = resume.sha
    with _flock(base_repo / ".git" / "covey-worktree-add.lock"):  # no overlapping `worktree add`s
        existing = [w for w in registered(base_repo) if w.path == dest]
        if existing and existing[0].branch == branch and dest.is_dir():
            return dest
        if os.path.lexists(dest):
            raise GitError(f"cannot unpack a workspace at {dest}: the path exists")
        if existing:  # registered, but its directory was deleted by hand
            git("worktree", "prune", cwd=base_repo)
        git("worktree", "add", "-q", "-B", branch, str(dest), start, cwd=base_repo)
    for path, data in include.items():
        if not os.path.lexists(path):  # a tracked file wins, as in a local worktree
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return dest


def _base_repository(cache: Path, pack: WorkspacePack) -> Path:
    """The repository holding `pack.base` on this node, made from its bundle once: a main
    checkout with nothing checked out (HEAD at the base), so that a session's subagents and
    teammates can make worktrees of their own from it (`open_worktree`), as from yours."""
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / f"{pack.base}.git"
    with _flock(cache / f"{pack.base}.lock"):
        if final.is_dir():
            return final
        tmp = cache / f"{pack.base}.git.{uuid.uuid4().hex}.tmp"
        try:
            git("init", "-q", str(tmp), cwd=cache)
            _unbundle(tmp, pack.bundle, pack.base, scratch=tmp)
            git("update-ref", _BASE_REF, pack.base, cwd=tmp)
            git("update-ref", "--no-deref", "HEAD", pack.base, cwd=tmp)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _include_targets(dest: Path, files: dict[str, bytes]) -> dict[Path, bytes]:
    """Where each include file goes; GitError for a path that would leave the workspace."""
    targets: dict[Path, bytes] = {}
    for rel, data in files.items():
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts or parts[0] == ".git":
            raise GitError(f"refusing the include file {rel!r}: it is not inside the workspace")
        targets[dest.joinpath(*parts)] = data
    return targets


def drop_workspace(dest: Path) -> None:
    """Remove a worktree `unpack_workspace` made, and its branch; the base repository stays."""
    dest = dest.absolute()
    common = Path(git("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=dest).strip())
    branch = git_result("symbolic-ref", "-q", "--short", "HEAD", cwd=dest).stdout.strip()
    with _flock(common / "covey-worktree-add.lock"):
        git("worktree", "remove", "--force", "--force", str(dest), cwd=common)
    shipping.forget(dest)
    if branch:
        git_result("branch", "-D", "--", branch, cwd=common)


def snapshot_for_shipping(worktree: Path, parent: str, message: str) -> ShippedSnapshot | None:
    """Commit the worktree's whole state (untracked, non-ignored files too) on `parent` and
    bundle what `parent` lacks; None when nothing changed since `parent`. Four or five git
    processes (`covey.git.shipping` keeps an index, the identity and what it knows of the
    history per worktree from step to step)."""
    head, parent_tree = _heads(worktree, parent)
    tree = shipping.snapshot_tree(worktree)
    agent_commits = not shipping.in_history(worktree, head, parent)
    if not agent_commits and tree == parent_tree:
        return None
    parents = [parent, head] if agent_commits else [parent]
    args = [a for p in parents for a in ("-p", p)]
    env = shipping.committer_env(worktree)
    sha = git("commit-tree", tree, *args, "-m", message, cwd=worktree, env=env).strip()
    shipping.remember(worktree, head, sha)
    return ShippedSnapshot(sha, parent, shipping.thin_bundle(worktree, sha, parent))


def _heads(worktree: Path, parent: str) -> tuple[str, str]:
    """The worktree's HEAD commit and `parent`'s tree, in one git process."""
    got = git("rev-parse", "HEAD^{commit}", f"{parent}^{{tree}}", cwd=worktree)  # parent: a sha
    head, tree = got.split()
    return head, tree


# --- git bundle ----------------------------------------------------------------------------


def _bundle(cwd: Path, path: Path, sha: str) -> None:
    """Write a bundle of `sha` and its whole history to `path`. `git bundle create` takes
    refs, not commits: `sha` gets a ref of its own for the while."""
    ref = f"{_SHIP_REF}{uuid.uuid4().hex}"
    git("update-ref", ref, sha, cwd=cwd)
    try:
        git("bundle", "create", "-q", str(path), ref, cwd=cwd, timeout_s=_PACK_TIMEOUT_S)
    finally:
        git_result("update-ref", "-d", ref, cwd=cwd)


def _unbundle(
    repo: Path, data: bytes, sha: str, *, scratch: Path, parents: bool = False
) -> list[str]:
    """Store the objects of the bundle `data` in `repo` (no ref changes), checking it whole
    and holding the commit `sha`; BundleError otherwise. The parents of `sha` if `parents`
    (read in the same git process as the check). The bundle is written to a file in
    `scratch` for git to read (on the repository's disk, not a small /tmp)."""
    scratch.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="incoming.", suffix=".bundle", dir=scratch)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        done = git_result("bundle", "unbundle", name, cwd=repo, timeout_s=_PACK_TIMEOUT_S)
    finally:
        os.unlink(name)
    if not done.ok:
        said = [line for line in done.stderr.splitlines() if line.strip()]
        reason = said[-1].strip() if said else f"exit {done.exit_code}"
        raise BundleError(f"the bundle of {sha[:12]} was refused, damaged in transit? ({reason})")
    if not parents:
        if _resolve(repo, f"{sha}^{{commit}}") != sha:
            raise BundleError(f"the bundle of {sha[:12]} does not hold that commit")
        return []
    shown = git_result("show", "-s", "--format=%H %P", "--end-of-options", sha, cwd=repo)
    found = shown.stdout.split() if shown.ok else []
    if not found or found[0] != sha:
        raise BundleError(f"the bundle of {sha[:12]} does not hold that commit")
    return found[1:]


def _resolve(repo: Path, rev: str) -> str:
    """The object `rev` names in `repo`, or "" when none."""
    found = git_result("rev-parse", "-q", "--verify", "--end-of-options", rev, cwd=repo)
    return found.stdout.strip() if found.ok else ""


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (made if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
