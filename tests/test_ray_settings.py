"""`background.executor` and `background.ray.*`: validated like every setting, and a dispatch
with the ray executor checks the cluster first (no cluster, no Ray: one line, exit 2, nothing
queued). A user on the local executor loads nothing of Ray or the executors."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from bgtools import agents, supervisor  # noqa: F401  (fixture)
from clitools import covey
from covey.config import RaySettings
from covey.errors import UserError
from covey.executors.ray_address import check_cluster
from test_startup_imports import imported_modules


def _settings(home: Path, background: dict[str, object]) -> None:
    (home / "settings.json").write_text(json.dumps({"background": background}))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("background", "named"),
    [
        ({"executor": "k8s"}, "key background.executor must be one of local, ray"),
        ({"ray": {"address": "nohost"}}, "key background.ray.address: 'nohost' must be"),
        ({"ray": {"maxSessionsPerNode": 0}}, "key background.ray.maxSessionsPerNode must be"),
    ],
)
def test_bad_ray_settings_are_one_line_exit_2_naming_the_key(
    git_repo: Path, covey_home: Path, background: dict[str, object], named: str
) -> None:
    _settings(covey_home, background)
    run = covey("--bg", "hi", "--model", "scripted:none", cwd=git_repo)
    assert run.code == 2, run.err
    assert named in run.err and str(covey_home / "settings.json") in run.err
    assert len(run.err.strip().splitlines()) == 1


def test_dispatch_to_an_unreachable_cluster_is_exit_2_and_queues_nothing(
    supervisor: Path,  # noqa: F811
    covey_home: Path,
) -> None:
    git_repo = supervisor
    address = f"127.0.0.1:{_closed_port()}"
    _settings(covey_home, {"executor": "ray", "ray": {"address": address}})
    (git_repo / "s.yaml").write_text("turns: [{text: hi}]\n")
    run = covey("--bg", "hi", "--model", f"scripted:{git_repo / 's.yaml'}", cwd=git_repo)
    assert run.code == 2
    assert run.err.strip() == (
        f"covey: error: background.ray.address: no Ray cluster answers at {address} "
        "(Connection refused); start it, fix the address in $COVEY_HOME/settings.json, "
        'or set background.executor to "local"'
    )
    assert agents(git_repo) == []


def test_without_ray_installed_the_check_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(UserError, match=r"Ray is not installed: pip install 'covey\[ray\]'"):
        check_cluster(RaySettings(address="127.0.0.1:1"))


def test_the_local_executor_dispatch_loads_nothing_of_ray(supervisor: Path) -> None:  # noqa: F811
    git_repo = supervisor
    (git_repo / "s.yaml").write_text("turns: [{text: hi}]\n")
    modules = imported_modules(
        "--bg", "hi", "--model", f"scripted:{git_repo / 's.yaml'}", cwd=git_repo
    )
    assert "covey.sessions.background" in modules
    assert {m for m in modules if m == "ray" or m.startswith("covey.executors")} == set()
