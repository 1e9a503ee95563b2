"""Rebuild every lecture notebook from its jupytext ``.py`` twin, without outputs.

Edit ``notebooks/NN_topic.py`` (the reviewable file), then run
``python tools/sync_notebooks.py``: it writes ``NN_topic.ipynb`` and rewrites the twin in
jupytext's canonical form, so that ``tests/test_notebook_pairs.py`` sees them in sync.
Pass ``--from-ipynb`` after editing notebooks in Jupyter instead: the twins are then
rebuilt from the notebooks (outputs are dropped either way). Name notebooks (``02`` or
``02_residual_blocks``) to sync only those.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import jupytext

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
METADATA_FILTER = "-jupytext.text_representation.jupytext_version"


def _clean(notebook) -> None:
    notebook.metadata["kernelspec"] = KERNELSPEC
    notebook.metadata.setdefault("jupytext", {})["notebook_metadata_filter"] = METADATA_FILTER
    for index, cell in enumerate(notebook.cells):
        # Ids derived from position and content keep re-syncs from churning the .ipynb.
        cell.id = hashlib.sha1(f"{index}:{cell.source}".encode()).hexdigest()[:8]
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None


def sync(stem: Path, from_ipynb: bool) -> None:
    """Write both files of one pair from the chosen side."""
    source = stem.with_suffix(".ipynb" if from_ipynb else ".py")
    notebook = jupytext.read(source)
    _clean(notebook)
    jupytext.write(notebook, stem.with_suffix(".ipynb"))
    jupytext.write(notebook, stem.with_suffix(".py"), fmt="py:percent")
    print(f"synced {stem.name} from {source.suffix}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-ipynb", action="store_true", help="rebuild twins from notebooks")
    parser.add_argument("names", nargs="*", help="notebooks to sync, e.g. 02 (default: all)")
    args = parser.parse_args()
    suffix = ".ipynb" if args.from_ipynb else ".py"
    patterns = [f"{name}*{suffix}" for name in args.names] or [f"[0-9]*{suffix}"]
    stems = sorted({path.with_suffix("") for p in patterns for path in NOTEBOOKS.glob(p)})
    if not stems:
        raise SystemExit(f"no notebook matches {args.names} in {NOTEBOOKS}")
    for stem in stems:
        sync(stem, args.from_ipynb)


if __name__ == "__main__":
    main()
