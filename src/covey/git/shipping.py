"""The node's git work per step, for `bundles.snapshot_for_shipping`, in few git processes.

    tree = snapshot_tree(worktree)             # `add -A` + `write-tree`, an index kept per worktree
    env = committer_env(worktree)              # {} or covey's identity: `git var` once per worktree
    in_history(worktree, commit, tip) -> bool  # `merge-base --is-ancestor`, skipped when known
    remember(worktree, commit, tip)            # `commit` is in `tip`'s history (a snapshot made)
    data = thin_bundle(cwd, sha, exclude)      # one `pack-objects`: a bundle of exclude..sha
    forget(worktree)                           # the worktree is gone: drop what was kept

A step used to cost ten git processes on the node; now four or five (`rev-parse` of HEAD and
the parent's tree, `add -A`, `write-tree`, `commit-tree`, `pack-objects`), plus `merge-base`
only when HEAD moved (the agent committed or checked out).

The index: the tree of the whole working tree comes from `git add -A` into an index of our
own (`<the worktree's index>.covey-ship`, beside git's), never the worktree's, so its index,
HEAD and files are untouched. It is kept from step to step (so `add -A` re-hashes only what
changed) and copied again from the worktree's index whenever that one changed (the agent ran
`git add`, `commit`, `checkout`…). Like the worktree's own index, it keeps a file once added
even after it becomes ignored.

The bundle: `git bundle create` wants a ref (an `update-ref` before and after it) and then runs
`pack-objects`; here the v2 bundle header (`-<parent>` as the prerequisite, the commit under
`refs/covey/ship/snapshot`) is written directly before one thin `pack-objects --revs`.
`git bundle unbundle` on the receiving side checks it as it would any bundle.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from covey.git.repo import git, git_bytes, git_result
from covey.git.snapshots import _IDENTITY

__all__ = [
    "committer_env",
    "forget",
    "in_history",
    "remember",
    "snapshot_tree",
    "thin_bundle",
]

_SHIP_INDEX = ".covey-ship"
_BUNDLE_REF = "refs/covey/ship/snapshot"
_PACK_TIMEOUT_S = 900.0

_index_paths: dict[str, Path] = {}
"""Worktree → git's index file of it."""
_copied: dict[str, tuple[int, int, int]] = {}
"""Worktree → (inode, size, mtime) of git's index when our index was copied from it."""
_identity: dict[str, dict[str, str]] = {}
"""Worktree → the environment `commit-tree` needs there."""
_known: dict[str, tuple[str, str]] = {}
"""Worktree → (commit, tip): `commit` is in `tip`'s history."""


def snapshot_tree(worktree: Path) -> str:
    """The tree of everything in the worktree that is not ignored."""
    real = _index_path(worktree)
    ours = real.with_name(real.name + _SHIP_INDEX)
    key = str(worktree)
    try:
        st = real.stat()
        now: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
    except FileNotFoundError:
        now = None
    if now is None or _copied.get(key) != now or not ours.exists():
        if now is None:
            ours.unlink(missing_ok=True)
        else:
            shutil.copyfile(real, ours)
            _copied[key] = now
    env = {"GIT_INDEX_FILE": str(ours)}
    git("add", "-A", cwd=worktree, env=env)
    return git("write-tree", cwd=worktree, env=env).strip()


def _index_path(worktree: Path) -> Path:
    key = str(worktree)
    if (found := _index_paths.get(key)) is None:
        path = Path(git("rev-parse", "--git-path", "index", cwd=worktree).strip())
        found = _index_paths[key] = path if path.is_absolute() else worktree / path
    return found


def committer_env(worktree: Path) -> dict[str, str]:
    """`{}` when the repository has a committer identity, else covey's (asked once)."""
    key = str(worktree)
    if (env := _identity.get(key)) is None:
        has = git_result("var", "GIT_COMMITTER_IDENT", cwd=worktree).ok
        env = _identity[key] = {} if has else dict(_IDENTITY)
    return env


def in_history(worktree: Path, commit: str, tip: str) -> bool:
    """Whether `commit` is `tip` or one of its ancestors."""
    if commit == tip or _known.get(str(worktree)) == (commit, tip):
        return True
    found = git_result("merge-base", "--is-ancestor", commit, tip, cwd=worktree).ok
    if found:
        remember(worktree, commit, tip)
    return found


def remember(worktree: Path, commit: str, tip: str) -> None:
    """Note that `commit` is in `tip`'s history (a snapshot `tip` was made on it)."""
    _known[str(worktree)] = (commit, tip)


def forget(worktree: Path) -> None:
    key = str(worktree)
    for kept in (_index_paths, _copied, _identity, _known):
        kept.pop(key, None)


def thin_bundle(cwd: Path, sha: str, exclude: str) -> bytes:
    """A bundle of `sha` whose prerequisite is `exclude` (a commit in `sha`'s history): the
    objects `exclude` lacks, as a thin pack."""
    header = f"# v2 git bundle\n-{exclude}\n{sha} {_BUNDLE_REF}\n\n".encode()
    pack = ("pack-objects", "--stdout", "--thin", "--delta-base-offset", "--revs", "-q")
    revs = f"{sha}\n^{exclude}\n".encode()
    return header + git_bytes(*pack, cwd=cwd, timeout_s=_PACK_TIMEOUT_S, stdin=revs)
