"""The repository address is written in one place and copied everywhere else exactly."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("stamp", ROOT / "tools" / "stamp_repo_url.py")
stamp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stamp)
FIX = "run `python tools/stamp_repo_url.py` and `python tools/sync_notebooks.py`"


def test_readme_badges_point_at_the_repository():
    url = stamp.repository_url()
    owner_repo = url.removeprefix("https://github.com/")
    readme = (ROOT / "README.md").read_text()
    badge = r"colab\.research\.google\.com/github/"
    badge += r"([\w.-]+/[\w.-]+)/blob/main/notebooks/(\w+)\.ipynb"
    badges = re.findall(badge, readme)
    assert badges, "README.md has no Open-in-Colab badges"
    assert {repo for repo, _ in badges} == {owner_repo}, FIX
    lectures = {p.stem for p in (ROOT / "notebooks").glob("[0-9]*.ipynb")}
    assert {nb for _, nb in badges} == lectures, "every lecture needs exactly one README badge"


def test_setup_cells_install_from_the_repository():
    url = stamp.repository_url()
    for twin in sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        found = re.findall(r'^REPO_URL = "([^"]*)"$', twin.read_text(), re.MULTILINE)
        assert found == [url], f"{twin.name}: setup cell has {found}, expected [{url!r}]: {FIX}"
