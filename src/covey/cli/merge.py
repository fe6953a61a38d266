"""`covey diff NAME`, `covey merge NAME [--squash|--rebase]`, `covey overlaps [--json]`.

Bad input (outside a repository, an unknown worktree, a dirty main checkout) is a UserError:
one line, exit 2. A merge conflict is not bad input: its multi-line report (files, and the
other worktrees that touched them) goes to stderr with exit 1, and nothing was changed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from covey.errors import UserError
from covey.git.merge import MergeConflict, MergeMode, merge_worktree, worktree_diff
from covey.git.overlaps import live_worktrees, overlaps_of, worktree_changes
from covey.git.repo import GitError

__all__ = ["COMMANDS"]


@contextmanager
def _git_errors() -> Iterator[None]:
    """An unexpected git failure is one line and exit 1, not a traceback."""
    try:
        yield
    except GitError as e:
        raise click.ClickException(str(e)) from None


@click.command("diff")
@click.argument("name")
@click.option("--stat", is_flag=True, help="A diffstat instead of the patch.")
def diff_command(name: str, stat: bool) -> None:
    """Show worktree NAME's changes against its base: committed, uncommitted and untracked."""
    with _git_errors():
        click.echo(worktree_diff(Path.cwd(), name, stat=stat), nl=False)


@click.command("merge")
@click.argument("name")
@click.option("--squash", is_flag=True, help="One commit summarising the worktree's commits.")
@click.option("--rebase", is_flag=True, help="Rebase the worktree branch, then fast-forward.")
@click.option("--force", is_flag=True, help="Also when a live session has the worktree locked.")
def merge_command(name: str, squash: bool, rebase: bool, force: bool) -> None:
    """Merge worktree NAME into the main checkout's current branch.

    Uncommitted work in the worktree is committed to its branch first. Conflicts are found
    before anything changes; the main checkout must have no uncommitted changes. Default: a
    fast-forward when the branch has not moved since the worktree's base, else a merge commit.
    A worktree a live session has locked is refused unless --force.
    """
    if squash and rebase:
        raise UserError("--squash and --rebase exclude each other: pass one of them")
    mode: MergeMode = "squash" if squash else "rebase" if rebase else "merge"
    try:
        with _git_errors():
            result = merge_worktree(Path.cwd(), name, mode, force=force)
    except MergeConflict as conflict:
        click.echo(f"covey: {conflict.report()}", err=True)
        sys.exit(conflict.exit_code)
    if result.outcome == "up to date":
        click.echo(f"{result.into} already contains worktree {name}: nothing to merge")
        return
    work = result.work_commit
    click.echo(
        f"merged worktree {name} into {result.into}: {result.outcome}, "
        f"{result.old_head[:10]}..{result.new_head[:10]}"
        + (f" (its uncommitted work first committed as {work[:10]})" if work else "")
    )


@click.command("overlaps")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def overlaps_command(as_json: bool) -> None:
    """List files changed in two or more live worktrees, with the worktrees' names."""
    with _git_errors():
        repo = live_worktrees(Path.cwd())
        overlaps = overlaps_of(worktree_changes(repo))
    if as_json:
        data = {
            "repo": str(repo.main.path),
            "worktrees": sorted(repo.worktrees),
            "overlaps": [{"path": o.path, "worktrees": o.worktrees} for o in overlaps],
        }
        click.echo(json.dumps(data, indent=2))
        return
    if not overlaps:
        click.echo(f"no file is changed in more than one of {len(repo.worktrees)} worktree(s)")
        return
    width = max(len(o.path) for o in overlaps)
    for o in overlaps:
        click.echo(f"{o.path.ljust(width)}  {', '.join(o.worktrees)}")


COMMANDS: list[click.Command] = [diff_command, merge_command, overlaps_command]
