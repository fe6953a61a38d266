"""Snapshots: a worktree's uncommitted and untracked (not ignored) work, kept as a commit.

A snapshot is a commit whose parent is the worktree's HEAD and whose tree is its working
tree, stored at `refs/covey/snapshots/<name>/<n>` (n = 1, 2, …). It is made with a temporary
index (a copy of the worktree's, so unchanged files are not hashed again): `git add -A`,
`write-tree`, `commit-tree`, `update-ref`. The branch, the real index and the files are
untouched. `apply_snapshot` brings the work back as uncommitted changes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from covey.git.layout import admin_dir
from covey.git.repo import GitError, git, git_result

__all__ = [
    "SNAPSHOT_PREFIX",
    "Snapshot",
    "apply_snapshot",
    "commit_tree",
    "is_dirty",
    "list_snapshots",
    "take_snapshot",
    "working_tree",
]

SNAPSHOT_PREFIX = "refs/covey/snapshots/"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "covey",
    "GIT_AUTHOR_EMAIL": "covey@localhost",
    "GIT_COMMITTER_NAME": "covey",
    "GIT_COMMITTER_EMAIL": "covey@localhost",
}


@dataclass(frozen=True)
class Snapshot:
    ref: str
    commit: str
    number: int
    head: str
    """The worktree's HEAD when the snapshot was taken (the snapshot's parent)."""


def _pathspec(exclude: Sequence[str]) -> list[str]:
    return ["--", ".", *(f":(exclude,literal){p}" for p in exclude)] if exclude else []


def is_dirty(worktree: Path, *, exclude: Sequence[str] = ()) -> bool:
    """True when the worktree has uncommitted changes or untracked files that are not ignored
    (`exclude`: paths covey put there itself, like linked directories)."""
    out = git(
        "status",
        "--porcelain",
        "-z",
        "--untracked-files=all",
        *_pathspec(exclude),
        cwd=worktree,
        env={"GIT_OPTIONAL_LOCKS": "0"},
    )
    return bool(out.strip("\0"))


def list_snapshots(root: Path, name: str) -> list[Snapshot]:
    """The snapshots of worktree `name`, oldest first."""
    out = git(
        "for-each-ref",
        "--format=%(refname)%00%(objectname)%00%(parent)",
        f"{SNAPSHOT_PREFIX}{name}/",
        cwd=root,
    )
    snaps = []
    for line in out.splitlines():
        ref, commit, parents = line.split("\0")
        number = ref.rsplit("/", 1)[-1]
        if number.isdigit():
            snaps.append(Snapshot(ref, commit, int(number), parents.split(" ")[0]))
    return sorted(snaps, key=lambda s: s.number)


def take_snapshot(
    root: Path,
    worktree: Path | None,
    name: str,
    *,
    head: str | None = None,
    exclude: Sequence[str] = (),
) -> Snapshot:
    """Commit the worktree's state to the next `refs/covey/snapshots/<name>/<n>`.

    With `worktree` None (its directory is gone), the snapshot is `head` itself, re-committed,
    so that a ref to it remains."""
    if worktree is None:
        if head is None:
            raise ValueError("a snapshot without a worktree needs its head")
        tree = git("rev-parse", f"{head}^{{tree}}", cwd=root).strip()
    else:
        head = head or git("rev-parse", "--verify", "HEAD^{commit}", cwd=worktree).strip()
        tree = working_tree(worktree, exclude)
    message = f"covey snapshot of worktree {name}\n\nworktree: {worktree or '(gone)'}\n"
    commit = commit_tree(root, tree, [head], message)
    for _ in range(100):
        taken = list_snapshots(root, name)
        ref = f"{SNAPSHOT_PREFIX}{name}/{(taken[-1].number if taken else 0) + 1}"
        # The empty old value makes update-ref refuse to overwrite a ref made meanwhile.
        if git_result("update-ref", "-m", "covey snapshot", ref, commit, "", cwd=root).ok:
            return Snapshot(ref, commit, int(ref.rsplit("/", 1)[-1]), head)
    raise GitError(f"cannot store a snapshot of {worktree} under {SNAPSHOT_PREFIX}{name}/")


def commit_tree(cwd: Path, tree: str, parents: Sequence[str], message: str) -> str:
    """A commit of `tree` on `parents`, with the user's identity, or covey's if they have none."""
    identity = {} if git_result("var", "GIT_COMMITTER_IDENT", cwd=cwd).ok else _IDENTITY
    args = [a for p in parents for a in ("-p", p)]
    return git("commit-tree", tree, *args, "-m", message, cwd=cwd, env=identity).strip()


def working_tree(worktree: Path, exclude: Sequence[str] = ()) -> str:
    """The tree of everything in the worktree that is not ignored, via a temporary index
    (its real index, HEAD and files are untouched)."""
    admin = admin_dir(worktree)  # None: the system temp dir
    fd, index = tempfile.mkstemp(prefix="covey-snapshot-index.", dir=admin)
    os.close(fd)
    try:
        real_index = Path(git("rev-parse", "--git-path", "index", cwd=worktree).strip())
        real_index = real_index if real_index.is_absolute() else worktree / real_index
        if real_index.exists():
            shutil.copyfile(real_index, index)
        else:
            os.unlink(index)
        env = {"GIT_INDEX_FILE": index}
        git("add", "-A", *_pathspec(_not_ignored(worktree, exclude)), cwd=worktree, env=env)
        return git("write-tree", cwd=worktree, env=env).strip()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(index)


def _not_ignored(worktree: Path, paths: Sequence[str]) -> list[str]:
    """The `paths` that git does not ignore anyway: `git add` fails on an exclude pathspec
    that names an ignored file ("The following paths are ignored…", git 2.39)."""
    if not paths:
        return []
    found = git_result("check-ignore", "-z", "--stdin", cwd=worktree, stdin="\0".join(paths))
    ignored = set(found.stdout.split("\0")) if found.exit_code in (0, 1) else set()
    return [p for p in paths if p not in ignored]


def apply_snapshot(worktree: Path, snap: Snapshot) -> list[str]:
    """Bring a snapshot's changes into the worktree as uncommitted work (three-way onto its
    HEAD). Returns the files left with conflict markers (when the branch moved meanwhile)."""
    trees = git(
        "rev-parse", f"{snap.commit}^{{tree}}", f"{snap.commit}^1^{{tree}}", cwd=worktree
    ).split()
    if trees[0] == trees[1]:
        return []
    picked = git_result("cherry-pick", "--no-commit", snap.commit, cwd=worktree, env=_IDENTITY)
    conflicts: list[str] = []
    if not picked.ok:
        out = git("diff", "--name-only", "-z", "--diff-filter=U", cwd=worktree)
        conflicts = [p for p in out.split("\0") if p]
        if not conflicts:
            raise GitError(f"cannot apply {snap.ref} in {worktree}: {picked.stderr.strip()}")
        git_result("cherry-pick", "--quit", cwd=worktree)
    git("reset", "--quiet", cwd=worktree)
    return conflicts
