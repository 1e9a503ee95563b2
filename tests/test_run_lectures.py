"""tools/run_lectures.py: a lecture run in a kernel at a chosen size, tabled, failures counted."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "tools/run_lectures.py", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_lecture_00_runs_at_smoke_size_and_is_tabled(tmp_path):
    done = run_tool("--size", "smoke", "--lectures", "00", "--source", "synthetic",
                    "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads((tmp_path / "lectures-smoke.json").read_text())
    assert [row["lecture"] for row in rows] == ["00_setup"] and rows[0]["ok"]
    assert "| 00_setup |" in (tmp_path / "lectures-smoke.md").read_text()
    assert (tmp_path / "00_setup.ipynb").exists()  # the executed copy, to read


def test_a_lecture_over_its_budget_fails_the_run(tmp_path):
    done = run_tool("--size", "smoke", "--lectures", "00", "--source", "synthetic",
                    "--out", str(tmp_path), "--budget-min", "0.0001")  # fmt: skip
    assert done.returncode == 1
    row = json.loads((tmp_path / "lectures-smoke.json").read_text())[0]
    assert not row["ok"] and "budget" in row["error"]


def test_an_unknown_lecture_is_one_line():
    done = run_tool("--lectures", "42")
    assert done.returncode != 0 and "--lectures: no lecture 42" in done.stderr
