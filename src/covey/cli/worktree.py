"""`covey worktree list|remove|prune|restore`: the worktrees `covey -w` made."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from covey.config import load_settings
from covey.git.pool import pool_entries
from covey.git.repo import GitError
from covey.git.worktrees import (
    RemoveReport,
    WorktreeInfo,
    find_repo,
    gitignore_hint,
    list_worktrees,
    prune_worktrees,
    remove_worktree,
    restore_worktree,
)

__all__ = ["COMMANDS", "worktree"]

P = ParamSpec("P")
R = TypeVar("R")


def _git_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """A git failure is one line and exit 1 (the command could not be done), not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except GitError as e:
            raise click.ClickException(str(e)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def worktree() -> None:
    """Worktrees made by `covey -w NAME` (in .covey/worktrees/)."""


def _size(n: int) -> str:
    for power, unit in ((3, "G"), (2, "M"), (1, "K")):
        if n >= 1024**power:
            return f"{n / 1024**power:.1f}{unit}"
    return f"{n}B"


def _row(i: WorktreeInfo) -> dict[str, Any]:
    return {**asdict(i), "path": str(i.path)}


@worktree.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_git_errors
def list_command(as_json: bool) -> None:
    """List worktrees: branch, base, dirty, commits ahead, size, who holds the lock.

    With --json: {"repo", "worktrees": [...], "pool": {"ready": N}}."""
    root = find_repo(Path.cwd())
    infos = list_worktrees(root)
    if as_json:
        pool = sum(1 for _, meta in pool_entries(root) if meta is not None and meta.ready)
        data = [_row(i) for i in infos]
        click.echo(json.dumps({"repo": str(root), "worktrees": data, "pool": {"ready": pool}}))
        return
    if hint := gitignore_hint(root):
        click.echo(f"covey: hint: {hint}", err=True)
    if not infos:
        click.echo("no worktrees (make one with: covey -w NAME)")
        return
    head = ("NAME", "BRANCH", "BASE", "DIRTY", "AHEAD", "SIZE", "LOCKED BY", "STATE")
    rows = [head] + [
        (
            i.name,
            i.branch or "(detached)",
            (i.base or "")[:10],
            "yes" if i.dirty else "no",
            str(i.ahead),
            _size(i.size_bytes),
            "-" if i.locked_by is None else (i.locked_by or "(no reason)"),
            i.state,
        )
        for i in infos
    ]
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _said(r: RemoveReport) -> str:
    work = "uncommitted work and HEAD" if r.dirty else "HEAD"
    branch = f"; deleted branch {r.branch}" if r.branch_deleted else ""
    return f"removed worktree {r.name} ({work} kept at {r.snapshot}{branch})"


@worktree.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also when the branch has unmerged commits.")
@_git_errors
def remove_command(name: str, force: bool) -> None:
    """Remove worktree NAME; its work is snapshotted first to refs/covey/snapshots/NAME/N."""
    report = remove_worktree(find_repo(Path.cwd()), name, force=force)
    click.echo(_said(report))
    if report.unmerged:
        click.echo(f"  {report.unmerged} unmerged commit(s) stay reachable from {report.snapshot}")


@worktree.command("prune")
@_git_errors
def prune_command() -> None:
    """Remove the worktrees that are clean, merged and unlocked; say why others stay."""
    report = prune_worktrees(find_repo(Path.cwd()))
    for r in report.removed:
        click.echo(_said(r))
    for name, why in report.kept:
        click.echo(f"kept {name}: {why}")
    if not report.removed and not report.kept:
        click.echo("no worktrees")


@worktree.command("restore")
@click.argument("name")
@_git_errors
def restore_command(name: str) -> None:
    """Recreate worktree NAME from its branch and put its latest snapshot's work back."""
    root = find_repo(Path.cwd())
    report = restore_worktree(root, name, load_settings(root).settings.worktree)
    wt = report.worktree
    click.echo(f"restored worktree {wt.name} at {wt.path} on {wt.branch}")
    if report.snapshot:
        click.echo(f"  uncommitted work put back from {report.snapshot}")
    if report.conflicts:
        click.echo(f"  conflicts to resolve: {', '.join(report.conflicts)}")


COMMANDS: list[click.Command] = [worktree]
