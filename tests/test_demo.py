"""`make demo` end to end: the fix-the-bug run, then three background sessions, one answered."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from clitools import covey
from covey.demo.background import ANSWER, SESSIONS


def test_the_demo_runs_offline_and_every_background_session_completes(
    covey_home: Path, tmp_path: Path
) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "covey.demo"],
        env={**os.environ, "COVEY_HOME": str(covey_home), "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "result: success" in out
    for name in SESSIONS:
        assert re.search(rf"^  {name} +completed +\$", out, re.MULTILINE), out
        assert re.search(rf"^ +[\d.]+s  {name} +\w+ → completed$", out, re.MULTILINE), out
    assert "asks: Should I add type hints or docstrings to calc.py?" in out
    assert f"$ covey reply refactor '{ANSWER}'" in out
    assert re.search(r"replied · \w+", out), out
    assert out.count("1 file changed") == len(SESSIONS)
    # the team: both tasks done by their owners; alice's edit of bob's calc.py was refused
    assert re.search(r"#1 +completed +bob +Add sub", out), out
    assert re.search(r"#2 +completed +alice +Write CHANGELOG", out), out
    assert re.search(r"calc\.py +\| 4 \+{4}$", out, re.MULTILINE), out
    # the demo used a COVEY_HOME of its own, and stopped its supervisor
    said = re.search(r"^COVEY_HOME=(\S+)", out, re.MULTILINE)
    assert said, out
    home = Path(said[1])
    assert home.parent.parent == tmp_path and (home / "covey.db").is_file()
    assert not list(covey_home.iterdir())
    status = covey("daemon", "status", "--json", cwd=home, env={"COVEY_HOME": str(home)})
    assert status.code == 0 and status.json()["running"] is False, status.out + status.err
