"""Full-size outcomes nobody has run are labelled as expectations, with their source.

Every bullet or numbered item of a lecture's "What to notice" blocks and "Try it" section that
speaks of the full size ("full size", "full-size", "full mode") must carry the label
"Expected at full size (source: ...)" (or "Measured at full size (...)" once a GPU run is
shipped). Instructions name the parameters cell's `full` branch instead.
"""

import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
FULL_SIZE = re.compile(r"\bfull[- ](size|mode)\b", re.IGNORECASE)
LABELS = ("Expected at full size (source:", "Measured at full size (")
ITEM_START = re.compile(r"^(\s*)(-|\d+\.)\s")


def markdown_cells(text: str) -> list[list[str]]:
    """The markdown cells of a py:percent twin, as lists of lines without the leading '# '."""
    cells, current = [], None
    for line in text.splitlines():
        if line.startswith("# %%"):
            current = [] if "[markdown]" in line else None
            if current is not None:
                cells.append(current)
        elif current is not None and line.startswith("#"):
            current.append(line[2:] if line.startswith("# ") else line[1:])
    return cells


def checked_items(cells: list[list[str]]) -> list[str]:
    """The items of the 'What to notice' blocks and of the 'Try it' section."""
    items, in_try_it = [], False
    for cell in cells:
        headings = [line for line in cell if line.startswith("## ")]
        if headings:
            in_try_it = headings[0].strip().lower().startswith("## try it")
        if not (in_try_it or any("What to notice" in line for line in cell)):
            continue
        item = None
        for line in cell:
            if ITEM_START.match(line) and not line.startswith("    "):
                if item:
                    items.append(" ".join(item))
                item = [line.strip()]
            elif item is not None and line.strip():
                item.append(line.strip())
            elif item is not None:
                items.append(" ".join(item))
                item = None
        if item:
            items.append(" ".join(item))
    return items


def unlabelled(text: str) -> list[str]:
    return [
        item
        for item in checked_items(markdown_cells(text))
        if FULL_SIZE.search(item) and not any(label in item for label in LABELS)
    ]


@pytest.mark.parametrize("lecture", sorted(NOTEBOOKS.glob("[0-9][0-9]*.py")), ids=lambda p: p.stem)
def test_full_size_outcomes_carry_their_label(lecture):
    found = unlabelled(lecture.read_text())
    assert not found, (
        f"{lecture.name}: full-size statements without 'Expected at full size (source: ...)':\n"
        + "\n".join(f"- {item[:160]}" for item in found)
    )


def test_the_check_finds_an_unlabelled_statement_and_accepts_a_labelled_one():
    lecture = "\n".join(
        [
            "# %% [markdown]",
            "# **What to notice**",
            "# - In full mode the deeper plain network ends with a higher training loss.",
            "# - Expected at full size (source: He et al. 2016): the same, on CIFAR-10.",
            "# %% [markdown]",
            "# ## Try it",
            "# 1. Set `EPOCHS = 3` in the `full` branch; at full size the curve is smoother.",
        ]
    )
    found = unlabelled(lecture)
    assert len(found) == 2 and found[0].startswith("- In full mode")


@pytest.mark.parametrize("lecture", sorted(NOTEBOOKS.glob("0[1-9]*.py")), ids=lambda p: p.stem)
def test_the_parameters_cell_starts_with_the_size_line(lecture):
    """Every lecture that trains or counts sizes it in one visible line a student can edit."""
    text = lecture.read_text()
    assert "# ## Parameters" in text, f"{lecture.name} has no Parameters section"
    after = text.split("# ## Parameters", 1)[1].split("\n# %%\n", 1)[1]
    assert after.startswith("SIZE = settings.SIZE  #"), after.splitlines()[0]
