"""Every lecture notebook and its jupytext twin say the same thing, and carry no outputs.

Rendering the notebook to py:percent with the repository's jupytext config and comparing
the text with the committed twin catches an edit to either side alone (``jupytext --diff``
and ``--test`` exit 0 on such drift, so they are no check).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PAIRS = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
FIX = "run `python tools/sync_notebooks.py` (or `--from-ipynb` after editing in Jupyter)"


def render_as_twin(notebook: Path) -> str:
    """The py:percent text jupytext makes of a notebook, with the repo's config."""
    result = subprocess.run(
        [sys.executable, "-m", "jupytext", "--to", "py:percent", "--output", "-", str(notebook)],
        capture_output=True,
        text=True,
        cwd=notebook.parent,
        check=True,
    )
    return result.stdout


def test_lectures_exist():
    assert any(p.name.startswith("00_") for p in PAIRS), "notebooks/00_setup.ipynb is missing"


@pytest.mark.parametrize("notebook", PAIRS, ids=lambda p: p.stem)
def test_twin_matches_notebook(notebook):
    twin = notebook.with_suffix(".py")
    assert twin.exists(), f"{notebook.name} has no jupytext twin {twin.name}: {FIX}"
    assert render_as_twin(notebook) == twin.read_text(), (
        f"{notebook.name} and {twin.name} have drifted apart: {FIX}"
    )


@pytest.mark.parametrize("notebook", PAIRS, ids=lambda p: p.stem)
def test_notebook_has_no_outputs(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    code = [(i, c) for i, c in enumerate(cells) if c["cell_type"] == "code"]
    with_outputs = [i for i, c in code if c["outputs"] or c.get("execution_count")]
    assert not with_outputs, f"{notebook.name}: cells {with_outputs} carry stored outputs: {FIX}"


def test_every_twin_has_a_notebook():
    orphans = [p.name for p in NOTEBOOKS.glob("[0-9]*.py") if not p.with_suffix(".ipynb").exists()]
    assert not orphans, f"twins without a notebook: {orphans}: {FIX}"


def test_lecture_00_lists_every_lecture():
    table = (NOTEBOOKS / "00_setup.py").read_text()
    listed = re.findall(r"^# \| (\d\d[a-z]?) \|", table, re.MULTILINE)
    lectures = [p.name.split("_")[0] for p in PAIRS if not p.name.startswith("00")]
    assert listed == lectures, f"00_setup's table lists {listed}, the lectures are {lectures}"
