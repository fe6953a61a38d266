"""The workspace travels by git (`covey.git.bundles`): a base packed on the user's machine and
unpacked on a node, snapshots of the node's worktree shipped back and applied to the user's
branch by compare-and-swap. Real repositories, real git; "the node" is another directory."""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
from pathlib import Path

import pytest

from covey.git.bundles import (
    BundleError,
    StaleSnapshot,
    WorkspacePack,
    drop_workspace,
    pack_progress,
    pack_workspace,
    receive_snapshot,
    snapshot_for_shipping,
    unpack_workspace,
)
from covey.git.repo import GitError
from test_worktrees_support import commit, git

ODD = "dir with space/ünï cødé\tand tab.txt"
RAW = os.fsdecode(b"raw-\xff\xfe-name.bin")  # not UTF-8: git stores the bytes as they are
BRANCH = "worktree-bg-1"


@pytest.fixture
def repo(git_repo: Path) -> Path:
    commit(
        git_repo,
        {
            ODD: "odd\n",
            "src/app.py": "print('hi')\n",
            "src/util.py": "X = 1\n",
            "run.sh": "echo run\n",
            ".gitignore": ".env\nbuild/\nconfig/*.local\n",
            ".worktreeinclude": ".env\nconfig/*.local\n",
        },
        "base",
    )
    (git_repo / RAW).write_bytes(b"\x00\x01raw")
    os.symlink("src/app.py", git_repo / "link-to-app")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "raw name and a symlink")
    (git_repo / ".env").write_text("TOKEN=local\n")
    (git_repo / "config").mkdir()
    (git_repo / "config" / "db.local").write_bytes(b"\xffdb")
    (git_repo / "build").mkdir()
    (git_repo / "build" / "out.o").write_bytes(b"ignored, not included")
    (git_repo / "notes.txt").write_text("the user's untracked work in progress\n")
    return git_repo


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def tree_of(repo: Path, rev: str) -> dict[str, str]:
    """path -> "mode sha" of every file in `rev` (names as git stores them)."""
    out = subprocess.run(
        ["git", "ls-tree", "-r", "-z", rev], cwd=repo, capture_output=True, check=True
    ).stdout
    entries = {}
    for record in out.split(b"\0"):
        if record:
            meta, _, path = record.partition(b"\t")
            mode, _, sha = meta.decode().split()
            entries[os.fsdecode(path)] = f"{mode} {sha}"
    return entries


def unpacked(repo: Path, tmp_path: Path, name: str = "s1") -> tuple[WorkspacePack, Path]:
    pack = pack_workspace(repo, "HEAD")
    dest = unpack_workspace(pack, tmp_path / "node" / name, BRANCH, cache_dir=tmp_path / "bases")
    git(repo, "branch", BRANCH, pack.base)  # what dispatch does on the user's side
    return pack, dest


def test_a_packed_base_unpacks_as_the_same_commit_with_the_include_files(
    repo: Path, tmp_path: Path
) -> None:
    pack, dest = unpacked(repo, tmp_path)

    assert pack.base == head(repo)
    assert pickle.loads(pickle.dumps(pack)) == pack
    assert git(dest, "symbolic-ref", "--short", "HEAD") == BRANCH
    assert head(dest) == pack.base
    assert git(dest, "status", "--porcelain") == ""
    assert (dest / ODD).read_text() == "odd\n"
    assert (dest / RAW).read_bytes() == b"\x00\x01raw"
    assert os.readlink(dest / "link-to-app") == "src/app.py"
    assert pack.include == {".env": b"TOKEN=local\n", "config/db.local": b"\xffdb"}
    assert (dest / ".env").read_text() == "TOKEN=local\n"
    assert (dest / "config" / "db.local").read_bytes() == b"\xffdb"
    assert not (dest / "build").exists()  # ignored but not included
    assert not (dest / "notes.txt").exists()  # untracked work stays with the user


def test_a_second_unpack_of_a_base_reuses_the_nodes_base_repository(
    repo: Path, tmp_path: Path
) -> None:
    pack, first = unpacked(repo, tmp_path)
    # the bundle is not read again: a second session of this base is one checkout
    second_pack = dataclasses.replace(pack, bundle=b"not a bundle")
    second = unpack_workspace(
        second_pack, tmp_path / "node" / "s2", "worktree-bg-2", cache_dir=tmp_path / "bases"
    )

    assert head(second) == head(first) == pack.base
    assert [p.name for p in (tmp_path / "bases").glob("*.git")] == [f"{pack.base}.git"]
    assert git(second, "rev-parse", "--git-common-dir") == git(
        first, "rev-parse", "--git-common-dir"
    )
    # unpacking again where it already is changes nothing
    (first / "work.txt").write_text("mine\n")
    assert unpack_workspace(pack, first, BRANCH, cache_dir=tmp_path / "bases") == first
    assert (first / "work.txt").read_text() == "mine\n"


def test_the_supervisor_bundles_a_base_once(repo: Path) -> None:
    first = pack_workspace(repo, "HEAD")
    cached = repo / ".git" / "covey" / "bundles" / f"{first.base}.bundle"
    made = cached.stat().st_ino
    second = pack_workspace(repo, first.base)

    assert second.bundle == first.bundle
    assert cached.stat().st_ino == made
    with pytest.raises(GitError):
        pack_workspace(repo, "no-such-branch")


def test_a_snapshot_carries_every_kind_of_change_and_leaves_the_worktree_alone(
    repo: Path, tmp_path: Path
) -> None:
    pack, dest = unpacked(repo, tmp_path)
    (dest / "src" / "app.py").write_text("print('changed')\n")
    (dest / "src" / "util.py").unlink()
    (dest / "run.sh").chmod(0o755)
    os.symlink("run.sh", dest / "new-link")
    (dest / "new dir" / "ñew\nline.txt").parent.mkdir()
    (dest / "new dir" / "ñew\nline.txt").write_text("untracked, not ignored\n")
    (dest / "build").mkdir()
    (dest / "build" / "cache.o").write_text("ignored\n")
    status = git(dest, "status", "--porcelain")

    snap = snapshot_for_shipping(dest, pack.base, "covey: after tools")
    assert snap is not None
    assert git(dest, "status", "--porcelain") == status  # index untouched
    assert head(dest) == pack.base and git(dest, "symbolic-ref", "--short", "HEAD") == BRANCH
    receive_snapshot(repo, BRANCH, pickle.loads(pickle.dumps(snap)))

    assert git(repo, "rev-parse", BRANCH) == snap.sha
    assert git(repo, "log", "-1", "--format=%s", BRANCH) == "covey: after tools"
    files = tree_of(repo, BRANCH)
    base = tree_of(repo, pack.base)
    assert "src/util.py" not in files
    assert files["src/app.py"] != base["src/app.py"]
    assert files["run.sh"].startswith("100755 ") and base["run.sh"].startswith("100644 ")
    assert files["new-link"].startswith("120000 ")
    assert "new dir/ñew\nline.txt" in files
    assert files[RAW] == base[RAW] and files[ODD] == base[ODD]
    assert not any(p.startswith("build/") or p in (".env", "config/db.local") for p in files)
    assert head(repo) == pack.base and (repo / "src" / "util.py").exists()  # checkout untouched


def test_nothing_changed_is_no_snapshot(repo: Path, tmp_path: Path) -> None:
    pack, dest = unpacked(repo, tmp_path)
    assert snapshot_for_shipping(dest, pack.base, "m") is None
    (dest / "src" / "app.py").write_text("v2\n")
    snap = snapshot_for_shipping(dest, pack.base, "m")
    assert snap is not None
    assert snapshot_for_shipping(dest, snap.sha, "m") is None


def test_successive_snapshots_are_thin_and_apply_in_order(repo: Path, tmp_path: Path) -> None:
    big = os.urandom(6 * 1024 * 1024)  # a large binary, no LFS
    (repo / "assets").mkdir()
    (repo / "assets" / "model.bin").write_bytes(big)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a large binary")
    pack, dest = unpacked(repo, tmp_path)
    assert len(pack.bundle) > len(big)
    assert (dest / "assets" / "model.bin").read_bytes() == big

    parent = pack.base
    for step in range(3):
        for name in ("a.py", "b.py", "c.py"):
            (dest / "src" / name).write_text(f"STEP = {step}\n" * 50)
        snap = snapshot_for_shipping(dest, parent, f"step {step}")
        assert snap is not None and snap.parent == parent
        assert len(snap.bundle) < 4096
        receive_snapshot(repo, BRANCH, snap)
        parent = snap.sha
    assert git(repo, "rev-list", "--count", f"{pack.base}..{BRANCH}") == "3"
    assert git(repo, "show", f"{BRANCH}:src/a.py").startswith("STEP = 2\n")


def test_a_snapshot_on_a_stale_parent_is_refused_and_changes_nothing(
    repo: Path, tmp_path: Path
) -> None:
    pack, dest = unpacked(repo, tmp_path)
    (dest / "src" / "app.py").write_text("first\n")
    first = snapshot_for_shipping(dest, pack.base, "first")
    assert first is not None
    receive_snapshot(repo, BRANCH, first)
    receive_snapshot(repo, BRANCH, first)  # a retried delivery is harmless

    (dest / "src" / "app.py").write_text("from a zombie host\n")
    zombie = snapshot_for_shipping(dest, pack.base, "zombie")  # still on the base
    assert zombie is not None
    with pytest.raises(StaleSnapshot, match=f"branch {BRANCH} is at {first.sha[:12]}"):
        receive_snapshot(repo, BRANCH, zombie)
    assert git(repo, "rev-parse", BRANCH) == first.sha

    git(repo, "branch", "-D", BRANCH)
    with pytest.raises(StaleSnapshot, match="is missing"):
        receive_snapshot(repo, BRANCH, first)
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", BRANCH], cwd=repo).returncode


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "swap the sha"])
def test_a_bundle_damaged_in_transit_is_refused_and_no_ref_moves(
    repo: Path, tmp_path: Path, damage: str
) -> None:
    pack, dest = unpacked(repo, tmp_path)
    (dest / "src" / "app.py").write_text("x = 1\n" * 200)
    snap = snapshot_for_shipping(dest, pack.base, "m")
    assert snap is not None
    data = bytearray(snap.bundle)
    if damage == "flip a byte":
        data[len(data) - 30] ^= 0xFF
        bad = dataclasses.replace(snap, bundle=bytes(data))
    elif damage == "truncate":
        bad = dataclasses.replace(snap, bundle=bytes(data[: len(data) // 2]))
    else:
        bad = dataclasses.replace(snap, sha=pack.base[:-1] + ("0" if pack.base[-1] != "0" else "1"))
    refs = git(repo, "for-each-ref")

    said = "does not hold that commit" if damage == "swap the sha" else "damaged in transit"
    with pytest.raises(BundleError, match=said):
        receive_snapshot(repo, BRANCH, bad)
    assert git(repo, "for-each-ref") == refs
    assert not list((repo / ".git" / "covey").glob("incoming.*"))  # nothing left behind


def test_a_damaged_base_bundle_leaves_nothing_on_the_node(repo: Path, tmp_path: Path) -> None:
    pack = pack_workspace(repo, "HEAD")
    bad = dataclasses.replace(pack, bundle=pack.bundle[: len(pack.bundle) - 40])
    dest = tmp_path / "node" / "s1"
    with pytest.raises(BundleError, match="damaged in transit"):
        unpack_workspace(bad, dest, BRANCH, cache_dir=tmp_path / "bases")
    assert not dest.exists()
    assert not list((tmp_path / "bases").glob("*.git*"))
    assert head(unpack_workspace(pack, dest, BRANCH, cache_dir=tmp_path / "bases")) == pack.base


def test_the_agents_own_commits_come_back_with_the_snapshot(repo: Path, tmp_path: Path) -> None:
    pack, dest = unpacked(repo, tmp_path)
    (dest / "feature.py").write_text("F = 1\n")
    git(dest, "add", "feature.py")
    git(dest, "-c", "user.name=agent", "-c", "user.email=a@x", "commit", "-q", "-m", "feature")
    (dest / "wip.py").write_text("uncommitted\n")

    snap = snapshot_for_shipping(dest, pack.base, "snapshot")
    assert snap is not None
    receive_snapshot(repo, BRANCH, snap)
    assert git(repo, "rev-parse", f"{BRANCH}^1") == pack.base
    assert git(repo, "log", "-1", "--format=%s", f"{BRANCH}^2") == "feature"
    assert {"feature.py", "wip.py"} <= set(tree_of(repo, BRANCH))
    assert snapshot_for_shipping(dest, snap.sha, "again") is None  # HEAD now in its history


def test_a_dropped_workspace_is_gone_with_its_branch(repo: Path, tmp_path: Path) -> None:
    pack, dest = unpacked(repo, tmp_path)
    (dest / "scratch.txt").write_text("x\n")
    common = Path(git(dest, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    drop_workspace(dest)
    assert not dest.exists()
    assert git(common, "branch", "--list", BRANCH) == ""
    assert head(unpack_workspace(pack, dest, BRANCH, cache_dir=tmp_path / "bases")) == pack.base


def test_include_paths_outside_the_workspace_are_refused(repo: Path, tmp_path: Path) -> None:
    pack = pack_workspace(repo, "HEAD")
    for rel in ("../escape", "/etc/x", ".git/hooks/post-checkout"):
        bad = dataclasses.replace(pack, include={rel: b"x"})
        with pytest.raises(GitError, match="not inside the workspace"):
            unpack_workspace(
                bad, tmp_path / "node" / "s", f"b{len(rel)}", cache_dir=tmp_path / "bases"
            )
    assert not (tmp_path / "node").exists()


def test_the_public_surface() -> None:
    import covey.git.bundles as bundles

    assert sorted(bundles.__all__) == [
        "BundleError",
        "KEEP_BUNDLES",
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


def test_sessions_unpacked_at_once_share_one_base_repository(repo: Path, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pack = pack_workspace(repo, "HEAD")

    def unpack(n: int) -> Path:
        return unpack_workspace(
            pack, tmp_path / "node" / f"s{n}", f"b{n}", cache_dir=tmp_path / "bases"
        )

    with ThreadPoolExecutor(6) as pool:
        made = list(pool.map(unpack, range(6)))
    assert [head(d) for d in made] == [pack.base] * 6
    assert len(list((tmp_path / "bases").glob("*.git"))) == 1
    assert len(git(made[0], "worktree", "list").splitlines()) == 1 + 6  # the bare one first


def test_a_workspace_deleted_by_hand_can_be_unpacked_again(repo: Path, tmp_path: Path) -> None:
    import shutil

    pack, dest = unpacked(repo, tmp_path)
    shutil.rmtree(dest)
    again = unpack_workspace(pack, dest, BRANCH, cache_dir=tmp_path / "bases")
    assert head(again) == pack.base and (again / ".env").exists()


def test_a_session_resumes_on_another_node_from_its_last_snapshot(
    repo: Path, tmp_path: Path
) -> None:
    pack, dest = unpacked(repo, tmp_path)
    fresh = pack_progress(repo, pack.base, BRANCH)
    assert (fresh.sha, fresh.bundle) == (pack.base, b"")  # nothing done yet
    (dest / "src" / "app.py").write_text("done on node 1\n")
    (dest / "src" / "util.py").unlink()
    snap = snapshot_for_shipping(dest, pack.base, "node 1")
    assert snap is not None
    receive_snapshot(repo, BRANCH, snap)

    progress = pickle.loads(pickle.dumps(pack_progress(repo, pack.base, BRANCH)))
    assert progress.sha == snap.sha and len(progress.bundle) < 4096
    bases = tmp_path / "node2-bases"
    other = unpack_workspace(
        pack, tmp_path / "node2" / "s1", BRANCH, cache_dir=bases, resume=progress
    )
    assert head(other) == snap.sha and git(other, "status", "--porcelain") == ""
    assert (other / "src" / "app.py").read_text() == "done on node 1\n"
    assert not (other / "src" / "util.py").exists() and (other / ".env").exists()
    # it goes on from there: the next snapshot lands on the same branch
    (other / "src" / "app.py").write_text("done on node 2\n")
    after = snapshot_for_shipping(other, snap.sha, "node 2")
    assert after is not None
    receive_snapshot(repo, BRANCH, after)
    assert git(repo, "show", f"{BRANCH}:src/app.py") == "done on node 2"
    assert git(repo, "rev-list", "--parents", "-1", BRANCH).split()[1:] == [snap.sha]


def test_a_locked_branch_is_an_error_not_a_stale_snapshot(repo: Path, tmp_path: Path) -> None:
    pack, dest = unpacked(repo, tmp_path)
    (dest / "src" / "app.py").write_text("v2\n")
    snap = snapshot_for_shipping(dest, pack.base, "m")
    assert snap is not None
    lock = repo / ".git" / "refs" / "heads" / f"{BRANCH}.lock"
    lock.write_text("")  # another git command is updating it right now
    with pytest.raises(GitError, match=f"cannot move {BRANCH}") as raised:
        receive_snapshot(repo, BRANCH, snap)
    assert not isinstance(raised.value, StaleSnapshot)  # worth retrying
    lock.unlink()
    receive_snapshot(repo, BRANCH, snap)
    assert git(repo, "rev-parse", BRANCH) == snap.sha
