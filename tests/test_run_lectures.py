"""tools/run_lectures.py: a lecture run in a kernel at a chosen size, tabled, failures counted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_a_training_cell_in_a_kernel_keeps_one_quiet_progress_line(tmp_path, load_script):
    """In Jupyter without ipywidgets: a text bar, no "IProgress not found" warning, and the
    executed notebook keeps the bar's last line only (not every redraw)."""
    import nbformat

    tool = load_script("tools/run_lectures.py")
    cell = (
        "from course_utils.data import synthetic_cifar10\n"
        "from course_utils.loader import DeviceLoader\n"
        "from course_utils.models import ResNet\n"
        "from course_utils.train import fit\n"
        "import optuna  # imports tqdm.auto, as the Hugging Face Hub does\n"
        "fit(ResNet([1], [4]), DeviceLoader(synthetic_cifar10(256, seed=0), 8), epochs=2,\n"
        "    name='tiny')\n"
        "print('trained')"
    )
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), path)
    out = tmp_path / "out"
    out.mkdir()
    row = tool.run_lecture(path, 300, out)
    assert row["ok"], row["error"]
    outputs = nbformat.read(out / "tiny.ipynb", as_version=4).cells[0].outputs
    streams = {output.name: output.text for output in outputs}
    assert [output.output_type for output in outputs] == ["stream", "stream"], outputs
    assert streams["stdout"] == "trained\n"
    assert streams["stderr"].startswith("tiny: 100%") and "64/64" in streams["stderr"]
    assert "IProgress" not in streams["stderr"] and streams["stderr"].count("\n") <= 1


def test_set_runs_an_assignment_after_the_parameters_cell(tmp_path, load_script):
    import nbformat

    tool = load_script("tools/run_lectures.py")
    cells = [
        nbformat.v4.new_code_cell("SIZE = 'smoke'\nSEED = 0"),
        nbformat.v4.new_code_cell("print(f'seed {SEED}')"),
    ]
    path = tmp_path / "lecture.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    out = tmp_path / "out"
    out.mkdir()
    row = tool.run_lecture(path, 300, out, tool.parse_settings(["SEED=3"]))
    assert row["ok"], row["error"]
    executed = nbformat.read(out / "lecture.ipynb", as_version=4).cells
    assert executed[2].outputs[0].text == "seed 3\n"  # the set cell ran after the parameters
    table = tool.write_table([row], "smoke", None, out, ["SEED = 3"]).read_text()
    assert "--size smoke --set SEED=3" in table


def test_set_without_a_value_or_a_parameters_cell_is_one_line(load_script):
    import nbformat

    done = run_tool("--lectures", "00", "--set", "SEED")
    assert done.returncode != 0 and "--set: give NAME=VALUE" in done.stderr
    tool = load_script("tools/run_lectures.py")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("SEED = 0")])
    with pytest.raises(SystemExit, match="no parameters cell"):
        tool.set_parameters(notebook, ["SEED = 1"])
