"""Making worktrees for `covey -w`: names, bases, `.worktreeinclude`, config, links, sparse
paths, hooks and locks — in real repositories (and a bare remote for `fresh`)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import msgspec
import pytest

import covey.git.worktrees as worktrees
from covey.config import WorktreeSettings, load_settings
from covey.errors import UserError
from covey.git.names import generate_name, validate_name
from covey.git.worktrees import (
    gitignore_hint,
    lock_worktree,
    open_worktree,
    remove_worktree,
    unlock_worktree,
)
from docstrings import attribute_docstrings
from test_worktrees_support import ScriptHooks, clone_with_remote, commit, git, settings

HEAD = settings(baseRef="head")


def test_public_surface() -> None:
    assert set(worktrees.__all__) == {
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
    }


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("..", "'..'"),
        ("a..b", "'..'"),
        (".hidden", "starts with '.'"),
        ("-x", "starts with '-'"),
        ("x.lock", "'.lock'"),
        ("a b", "a space"),
        ("a:b", "':'"),
        ("a~1", "'~'"),
        ("what?", "'?'"),
        ("a@{1}", "'@'"),
        ("x" * 101, "longer than 100"),
        ("héllo", "'é'"),
        ("Émile", "'É'"),
        ("a\u200bb", "'\\u200b'"),
        ("=-x", "not -w=NAME"),
        ("x.", "ends with '.'"),
    ],
)
def test_bad_names_are_refused_with_the_reason(name: str, why: str) -> None:
    with pytest.raises(UserError, match=re.escape(why)) as info:
        validate_name(name)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["fix-1", "feature_x", "v1.2", "A-Z_09", "a"])
def test_good_names_pass(name: str) -> None:
    assert validate_name(name) == name


def test_generated_names_avoid_taken_ones() -> None:
    rng = random.Random(7)
    first = generate_name(lambda n: False, random.Random(7))
    second = generate_name(lambda n: n == first, rng)
    assert re.fullmatch(r"[a-z]+-[a-z]+-[a-z]+(-\d+)?", first) and second != first


def test_settings_defaults_docs_and_errors(tmp_path: Path) -> None:
    s = WorktreeSettings()
    assert (s.baseRef, s.pool, s.symlinkDirectories, s.sparsePaths) == ("fresh", 0, [], [])
    models: list[type[msgspec.Struct]] = [WorktreeSettings]
    assert all(attribute_docstrings(m).get(name) for m in models for name in m.__struct_fields__)
    project = tmp_path / "p"
    (project / ".covey").mkdir(parents=True)
    (project / ".git").mkdir()
    path = project / ".covey" / "settings.json"
    for bad, said in [
        ({"baseRef": "latest"}, "key worktree.baseRef must be one of fresh, head"),
        ({"pool": -1}, "key worktree.pool must be an integer from 0 to 64"),
        ({"symlinkDirectories": ["../up"]}, "key worktree.symlinkDirectories[0]: '../up'"),
        ({"sparsePaths": ["/abs"]}, "must be a path inside the repository"),
    ]:
        path.write_text(json.dumps({"worktree": bad}))
        with pytest.raises(UserError, match=re.escape(said)):
            load_settings(project)
    path.write_text(json.dumps({"worktree": {"pool": 2, "symlinkDirectories": ["node_modules/"]}}))
    loaded = load_settings(project).settings.worktree
    assert loaded.pool == 2 and loaded.symlinkDirectories == ["node_modules"]


def test_create_then_reopen(git_repo: Path) -> None:
    wt = open_worktree(git_repo, "feat", HEAD)
    assert wt.path == git_repo / ".covey" / "worktrees" / "feat"
    assert (wt.name, wt.branch, wt.created, wt.repo_root) == (
        "feat",
        "worktree-feat",
        True,
        git_repo,
    )
    assert wt.base == git(git_repo, "rev-parse", "HEAD")
    assert git(wt.path, "symbolic-ref", "--short", "HEAD") == "worktree-feat"
    assert (wt.path / "README.md").read_text() == "sample\n"
    (wt.path / "work.txt").write_text("in progress")
    again = open_worktree(git_repo, "feat", HEAD)
    assert again.path == wt.path and again.created is False and again.base == wt.base
    assert (again.path / "work.txt").read_text() == "in progress"
    from_inside = open_worktree(wt.path, "feat", HEAD)  # the repo is found from a worktree too
    assert from_inside.path == wt.path and from_inside.repo_root == git_repo


def test_generated_name_when_none_given(git_repo: Path) -> None:
    wt = open_worktree(git_repo, None, HEAD)
    assert re.fullmatch(r"[a-z]+-[a-z]+-[a-z]+(-\d+)?", wt.name)
    assert wt.branch == f"worktree-{wt.name}" and wt.path.is_dir()


def test_outside_a_repository_and_bad_names_touch_nothing(tmp_path: Path, git_repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UserError, match=r"not a git repository: .*plain \(covey -w needs one\)"):
        open_worktree(plain, "x", HEAD)
    with pytest.raises(UserError, match=re.escape("invalid worktree name '../x'")):
        open_worktree(git_repo, "../x", HEAD)
    assert not (git_repo / ".covey").exists()


def test_fresh_uses_the_remote_default_branch_and_head_the_local_one(
    tmp_path: Path, git_repo: Path
) -> None:
    clone, _ = clone_with_remote(tmp_path, git_repo)
    pushed_later = commit(git_repo, {"upstream.txt": "new upstream\n"}, "upstream work")
    git(git_repo, "push", "-q", str(tmp_path / "remote.git"), "main")
    local = commit(clone, {"local.txt": "unpushed\n"}, "local work")
    fresh = open_worktree(clone, "fresh", settings(baseRef="fresh"))
    # the remote was never fetched since the clone, so it is fetched first
    assert fresh.base == pushed_later == git(clone, "rev-parse", "origin/main")
    assert (fresh.path / "upstream.txt").exists() and not (fresh.path / "local.txt").exists()
    head = open_worktree(clone, "head", HEAD)
    assert head.base == local and (head.path / "local.txt").exists()


def test_fresh_without_a_remote_is_local_head(git_repo: Path) -> None:
    local = commit(git_repo, {"x.txt": "x"})
    assert open_worktree(git_repo, "f", settings()).base == local


def test_gitignore_hint(git_repo: Path) -> None:
    hint = gitignore_hint(git_repo)
    assert hint is not None and "'.covey/worktrees/'" in hint and ".gitignore" in hint
    (git_repo / ".gitignore").write_text(".covey/worktrees/\n")
    assert gitignore_hint(git_repo) is None
    (git_repo / ".gitignore").write_text("/.covey/\n")
    assert gitignore_hint(git_repo) is None


def _files(root: Path) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for f in filenames:
            found.add((Path(dirpath) / f).relative_to(root).as_posix())
    return found - {".git"}


def test_worktreeinclude_copies_ignored_matches_only(git_repo: Path) -> None:
    commit(
        git_repo,
        {
            ".gitignore": ".env*\n*.key\nsecrets/\nbuild/\n",
            ".worktreeinclude": "**/.env.local\n.env\n/config/*.key\n!config/public.key\n"
            "secrets/\nnotes.txt\n.env.link\n",
        },
    )
    for rel in [
        ".env",
        ".env.local",
        "sub/deep/.env.local",
        "config/a.key",
        "config/public.key",
        "nested/config/b.key",
        "secrets/token",
        "secrets/more/token2",
        "build/out.bin",
        "notes.txt",
        ".env.other",
    ]:
        (git_repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (git_repo / rel).write_text(f"content of {rel}")
    os.symlink(".env", git_repo / ".env.link")
    wt = open_worktree(git_repo, "inc", HEAD)
    copied = _files(wt.path) - {
        ".gitignore",
        ".worktreeinclude",
        "README.md",
    }
    assert copied == {
        ".env",
        ".env.local",
        "sub/deep/.env.local",
        "config/a.key",
        "secrets/token",
        "secrets/more/token2",
        ".env.link",
    }
    assert (wt.path / "sub/deep/.env.local").read_text() == "content of sub/deep/.env.local"
    assert os.readlink(wt.path / ".env.link") == ".env"  # a symlink stays a symlink
    assert git(wt.path, "status", "--porcelain") == ""


def test_covey_config_is_visible_inside(git_repo: Path) -> None:
    commit(git_repo, {".gitignore": ".covey/settings.local.json\n.covey/worktrees/\n"})
    covey_dir = git_repo / ".covey"
    (covey_dir / "agents").mkdir(parents=True)
    (covey_dir / "agents" / "reviewer.md").write_text("---\nname: reviewer\n---\nReview.\n")
    (covey_dir / "settings.local.json").write_text(json.dumps({"model": "haiku"}))
    wt = open_worktree(git_repo, "cfg", HEAD)
    assert (wt.path / ".covey" / "agents" / "reviewer.md").is_file()
    assert not (wt.path / ".covey" / "worktrees").exists()
    assert load_settings(wt.path).settings.model == "haiku"
    assert load_settings(wt.path).project_root == wt.path


def test_symlinked_directories(git_repo: Path) -> None:
    commit(git_repo, {".gitignore": "node_modules/\n"})
    (git_repo / "node_modules" / "pkg").mkdir(parents=True)
    (git_repo / "node_modules" / "pkg" / "index.js").write_text("x")
    s = settings(baseRef="head", symlinkDirectories=["node_modules", "web/node_modules"])
    wt = open_worktree(git_repo, "links", s)
    link = wt.path / "node_modules"
    assert link.is_symlink() and link.resolve() == (git_repo / "node_modules").resolve()
    assert not (wt.path / "web").exists()  # missing in the main checkout: nothing linked
    report = remove_worktree(git_repo, "links")
    assert not report.dirty  # the link is covey's own, not work
    assert (git_repo / "node_modules" / "pkg" / "index.js").read_text() == "x"
    tree = git(git_repo, "ls-tree", "-r", "--name-only", report.snapshot)
    assert "node_modules" not in tree


def test_sparse_paths(git_repo: Path) -> None:
    commit(git_repo, {"a/x.txt": "x", "b/y.txt": "y", "top.txt": "t"})
    wt = open_worktree(git_repo, "sparse", settings(baseRef="head", sparsePaths=["a"]))
    assert (wt.path / "a" / "x.txt").exists() and (wt.path / "top.txt").exists()
    assert not (wt.path / "b").exists()
    assert git(wt.path, "status", "--porcelain") == ""
    assert (git_repo / "b" / "y.txt").exists()  # the main checkout stays whole
    assert git(git_repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_worktree_create_hook_replaces_creation(git_repo: Path, tmp_path: Path) -> None:
    commit(git_repo, {".gitignore": ".env\n", ".worktreeinclude": ".env\n"})
    (git_repo / ".env").write_text("SECRET=1")
    hooks = ScriptHooks(git_repo, tmp_path / "removed.log")
    wt = open_worktree(git_repo, "hooked", HEAD, hooks=hooks)
    assert wt.path == git_repo.parent / "hooked-hooked"
    assert wt.created and wt.branch == "hooked-hooked" and wt.base == ""
    assert not (wt.path / ".env").exists()  # .worktreeinclude is not processed, as in Claude Code
    assert not (git_repo / ".covey" / "worktrees" / "hooked").exists()


def test_without_a_create_hook_covey_creates_and_remove_hook_runs(
    git_repo: Path, tmp_path: Path
) -> None:
    log = tmp_path / "removed.log"
    hooks = ScriptHooks(git_repo, log, create=False)
    wt = open_worktree(git_repo, "plain", HEAD, hooks=hooks)
    assert wt.path == git_repo / ".covey" / "worktrees" / "plain"
    remove_worktree(git_repo, "plain", hooks=hooks)
    assert log.read_text() == str(wt.path) and not wt.path.exists()


def test_lock_while_a_session_runs(git_repo: Path) -> None:
    wt = open_worktree(git_repo, "busy", HEAD)
    lock_worktree(wt, "covey session s1 (pid 42)")
    lock_worktree(wt, "covey session s1 (pid 42)")  # the same holder again: fine
    porcelain = git(git_repo, "worktree", "list", "--porcelain")
    assert "locked covey session s1 (pid 42)" in porcelain
    with pytest.raises(UserError, match=r"already locked by covey session s1 \(pid 42\)"):
        lock_worktree(wt, "covey session s2")
    with pytest.raises(UserError, match=r"locked by covey session s1 \(pid 42\); stop that"):
        remove_worktree(git_repo, "busy", force=True)
    assert wt.path.is_dir()
    unlock_worktree(wt)
    unlock_worktree(wt)  # not locked: fine
    remove_worktree(git_repo, "busy")
    assert not wt.path.exists()


def test_reusing_a_name_after_its_directory_was_deleted(git_repo: Path) -> None:
    wt = open_worktree(git_repo, "gone", HEAD)
    mine = commit(wt.path, {"mine.txt": "kept"}, "my work")
    shutil.rmtree(wt.path)
    again = open_worktree(git_repo, "gone", HEAD)
    assert again.created and git(again.path, "rev-parse", "HEAD") == mine
    assert (again.path / "mine.txt").read_text() == "kept"


def test_a_leftover_directory_is_never_clobbered(git_repo: Path) -> None:
    leftover = git_repo / ".covey" / "worktrees" / "old"
    leftover.mkdir(parents=True)
    (leftover / "precious.txt").write_text("keep me")
    with pytest.raises(UserError, match="exists but is not a git worktree"):
        open_worktree(git_repo, "old", HEAD)
    assert (leftover / "precious.txt").read_text() == "keep me"
    (git_repo / ".covey" / "worktrees" / "empty").mkdir()
    assert open_worktree(git_repo, "empty", HEAD).created  # an empty one is simply used


def test_worktrees_opened_at_once_from_many_threads_all_succeed(git_repo: Path) -> None:
    """Concurrent `git worktree` commands read each other's half-made admin directories
    (git 2.39: "failed to read .git/worktrees/X/commondir"); covey retries those."""
    from concurrent.futures import ThreadPoolExecutor

    names = [f"par-{i:02d}" for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        opened = list(pool.map(lambda n: open_worktree(git_repo, n, WorktreeSettings()), names))
    assert sorted(w.name for w in opened) == names
    listed = git(git_repo, "worktree", "list", "--porcelain")
    assert all(str(w.path) in listed and (w.path / ".git").is_file() for w in opened)
