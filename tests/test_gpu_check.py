"""The prepared GPU check's dry run: steps 1-2 on the CPU, every result written as it comes."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


def test_dry_run_writes_its_summary(tmp_path):
    out = tmp_path / "gpu-dry"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out), "--seeds", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["facts"]["mode"].startswith("dry run")
    nets = {"capstone (narrowed)", "resnet9_page (narrowed)", "resnet20"}
    assert {row["net"] for row in summary["throughput"]} == nets
    assert all(row["images_per_sec"] > 0 for row in summary["throughput"])
    assert [row["seed"] for row in summary["fast94"]] == [0, 1]
    assert all(0 <= row["test_acc"] <= 1 and row["epochs"] == 2 for row in summary["fast94"])
    assert [row["seed"] for row in summary["page94"]] == [0]  # after fast94, one seed
    markdown = (out / "summary.md").read_text()
    assert "| capstone (narrowed) |" in markdown and "## fast94" in markdown
    assert markdown.index("## fast94") < markdown.index("## page94")


def test_a_tiny_budget_stops_cleanly_with_partial_results(tmp_path):
    out = tmp_path / "gpu-short"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out), "--budget-s", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert any("not started" in note for note in summary["notes"])
    assert summary["fast94"] == [] and summary["page94"] == []


def test_the_package_trains_with_only_the_core_dependencies():
    """A GPU machine may lack torchinfo, jupyter, optuna, jupytext, huggingface_hub, pyarrow:
    course_utils must import and train without them (they are imported where used)."""
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
BLOCKED = {"torchinfo", "optuna", "jupytext", "nbclient", "jupyter_client", "ipykernel",
           "huggingface_hub", "pyarrow"}
sys.meta_path.insert(0, Block())
import course_utils.support.cli, course_utils.recipes, course_utils.plots
from course_utils.data import synthetic_cifar10
from course_utils.loader import DeviceLoader
from course_utils.models import ResNet
from course_utils.train import fit
history = fit(ResNet([1], [4]), DeviceLoader(synthetic_cifar10(64), 32, device="cpu"),
              epochs=1, progress=False)
print("trained", len(history.step_loss))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trained 2" in result.stdout
