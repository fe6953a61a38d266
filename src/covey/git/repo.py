"""Repository basics: run git, make a repository, commit, show a diff.

Every git command covey runs itself goes through `git_argv`, which turns off what a
repository's own files could make git run: hooks (`core.hooksPath=/dev/null`, a path under
which no hook can ever exist) and an fsmonitor hook (`core.fsmonitor=false`; the overlap radar
sets its own, see `fsmonitor`). An agent that planted `.git/hooks/post-checkout` or
`git config core.fsmonitor …` therefore gets nothing run outside its sandbox by `covey -w`,
`covey worktree …`, the radar, snapshots or `covey merge`. Creating a worktree runs no
post-checkout hook either, and covey's git commands do not see its provider credentials. Git
commands a person or an agent types (Bash) are theirs: hooks apply there as usual.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from covey import proc
from covey.errors import GitError, UserError

__all__ = [
    "NO_HOOKS",
    "WORKTREE_RETRIES",
    "GitError",
    "commit_all",
    "diff",
    "find_repo",
    "git",
    "git_argv",
    "git_bytes",
    "git_result",
    "init_repo",
    "is_transient_worktree_error",
    "repo_root",
]

WORKTREE_RETRIES = 5
_IDENTITY = ("-c", "user.name=covey", "-c", "user.email=covey@localhost")
NO_HOOKS = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")
"""Options before every covey git command: no repository hook, no foreign fsmonitor. A later
`-c core.fsmonitor=…` (the radar's own hook) wins over this one."""


def git_argv(*args: str) -> list[str]:
    """The argv of a git command covey runs: `git`, `NO_HOOKS`, then `args`."""
    return ["git", *NO_HOOKS, *args]


def git(
    *args: str,
    cwd: Path,
    timeout_s: float = 60.0,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> str:
    """Run git and return its stdout; raise GitError (with git's last words) when it fails.

    `env` is laid over the environment (e.g. `GIT_INDEX_FILE`); `stdin` is fed to git.
    """
    result = git_result(*args, cwd=cwd, timeout_s=timeout_s, env=env, stdin=stdin)
    if not result.ok:
        said = (result.stderr or result.stdout).strip().splitlines()
        raise GitError(f"git {' '.join(args)} failed in {cwd}: {said[-1] if said else '?'}")
    return result.stdout


def git_result(
    *args: str,
    cwd: Path,
    timeout_s: float = 60.0,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> proc.ProcessResult:
    """Run git and return the whole result, whatever the exit code (for commands whose
    non-zero exit is an answer, like `check-ignore` or `rev-parse --verify`).

    `git worktree` commands are not safe to run at once in one repository: one can read
    another's half-made admin directory ("failed to read .git/worktrees/X/commondir"). Such
    a failure is retried here, except for `add`, which may have made its branch before it
    failed: `open_worktree` retries that one as a whole (see `is_transient_worktree_error`)."""
    data = stdin.encode() if stdin is not None else None
    argv = git_argv(*args)
    environ = {**proc.without_credentials(), **(env or {})}
    if not args or args[0] != "worktree":
        return proc.run(argv, cwd=cwd, timeout_s=timeout_s, env=environ, stdin=data)
    for attempt in range(WORKTREE_RETRIES):
        result = proc.run(argv, cwd=cwd, timeout_s=timeout_s, env=environ, stdin=data)
        if result.ok or not is_transient_worktree_error(result.stderr) or args[1:2] == ("add",):
            return result
        time.sleep(0.02 * (attempt + 1))
    return result


def git_bytes(*args: str, cwd: Path, timeout_s: float = 60.0, stdin: bytes | None = None) -> bytes:
    """Run git and return its stdout as bytes (a pack, a bundle); raise GitError (with git's
    last words, or that it timed out) when it fails. `stdin` is fed to git."""
    environ = proc.without_credentials()
    result = proc.run_bytes(git_argv(*args), cwd=cwd, timeout_s=timeout_s, env=environ, stdin=stdin)
    if result.timed_out:
        raise GitError(f"git {' '.join(args)} timed out after {timeout_s:g} s in {cwd}")
    if not result.ok:
        said = result.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"git {' '.join(args)} failed in {cwd}: {said[-1] if said else '?'}")
    return result.stdout


def is_transient_worktree_error(message: str) -> bool:
    """git met another `git worktree` command's half-made admin directory; retry."""
    return "failed to read" in message and "/worktrees/" in message


def find_repo(cwd: Path) -> Path:
    """The main checkout of the repository holding `cwd`, or a UserError."""
    root = repo_root(cwd)
    if root is None:
        raise UserError(f"not a git repository: {cwd} (covey -w needs one)")
    return root


def repo_root(cwd: Path) -> Path | None:
    """The main checkout of the repository holding `cwd` (also from inside a linked
    worktree), or None when `cwd` is in no git repository or only in a bare one."""
    if not cwd.is_dir():
        return None
    result = git_result("rev-parse", "--path-format=absolute", "--git-common-dir", cwd=cwd)
    if not result.ok:
        return None
    common = Path(result.stdout.strip())
    if common.name == ".git":
        return common.parent
    listing = git_result("worktree", "list", "--porcelain", cwd=cwd)  # a separate git dir
    first = listing.stdout.split("\n", 1)[0] if listing.ok else ""
    if not first.startswith("worktree ") or "\nbare" in listing.stdout.split("\n\n", 1)[0]:
        return None
    return Path(first.removeprefix("worktree "))


def init_repo(path: Path, branch: str = "main") -> None:
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", branch, cwd=path)


def commit_all(path: Path, message: str) -> None:
    """Stage everything and commit, with covey's identity if the user has none."""
    git("add", "-A", cwd=path)
    has_identity = git_result("config", "user.email", cwd=path).ok
    identity = () if has_identity else _IDENTITY
    git(*identity, "commit", "-q", "--allow-empty", "-m", message, cwd=path)


def diff(path: Path, *args: str) -> str:
    """`git diff` of the working tree, untracked files included (as intent-to-add)."""
    git("add", "-A", "--intent-to-add", cwd=path)
    return git("diff", *args, cwd=path)
