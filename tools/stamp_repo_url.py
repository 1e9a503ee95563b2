"""Write the repository address from pyproject.toml into the README badges and the
notebooks' setup cells.

The address lives in one place, ``[project.urls] Repository`` in pyproject.toml. After
forking or moving the course, change it there and run ``python tools/stamp_repo_url.py``,
then ``python tools/sync_notebooks.py``; ``tests/test_repo_url.py`` checks they agree.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GITHUB = re.compile(r"https://github\.com/([\w.-]+)/([\w.-]+)")
COLAB = re.compile(r"colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/")
SETUP_LINE = re.compile(r'^REPO_URL = "[^"]*"$', re.MULTILINE)


def repository_url() -> str:
    """The address in pyproject.toml's ``[project.urls] Repository`` entry."""
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'^Repository = "(https://github\.com/[^"]+)"$', text, re.MULTILINE)
    if match is None:
        raise SystemExit(
            'pyproject.toml has no [project.urls] Repository = "https://github.com/..."'
        )
    return match.group(1).removesuffix(".git")


def main() -> None:
    url = repository_url()
    owner, name = GITHUB.match(url).groups()
    readme = ROOT / "README.md"
    badge_prefix = f"colab.research.google.com/github/{owner}/{name}/"
    readme.write_text(COLAB.sub(badge_prefix, readme.read_text()))
    for twin in sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        twin.write_text(SETUP_LINE.sub(f'REPO_URL = "{url}"', twin.read_text()))
    print(f"stamped {url}; now run `python tools/sync_notebooks.py`")


if __name__ == "__main__":
    main()
