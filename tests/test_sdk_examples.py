"""Every example of docs/sdk.md runs: a bus validator, a hotel check, a front
desk, and a reader of one's own, each as a real process in an empty directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "python").glob("*.py"))


def test_the_guide_names_every_example_and_no_other() -> None:
    guide = (ROOT / "docs" / "sdk.md").read_text(encoding="utf-8")
    named = set(re.findall(r"examples/python/(\w+\.py)", guide))
    assert named == {p.name for p in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(example: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "SSCARD_STATE_DIR": str(tmp_path / "state")}
    run = subprocess.run(
        [sys.executable, str(example), str(work)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert {p.name for p in tmp_path.iterdir()} <= {"work", "state"}  # nothing in the cwd
