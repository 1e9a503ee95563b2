"""Run lectures top to bottom at one size and table how long each took and what it asserted.

    python tools/run_lectures.py --size cpu                      # every lecture, real CIFAR-10
    python tools/run_lectures.py --size cpu --lectures 01,02     # some of them
    python tools/run_lectures.py --size smoke --lectures 00 --source synthetic
    python tools/run_lectures.py --size cpu --lectures 01 --set SEED=1 --out runs/seed1

Each lecture runs in its own Jupyter kernel (nbclient) from the notebooks folder, with
``COURSE_SIZE`` set to the size and ``CIFAR10_SOURCE`` to an absolute path of the data (by
default the JPEG copy in ``../shared/data`` when it exists). Every line a lecture prints that
starts with ``key number:`` (``settings.key_number``) goes into the table. The table is
written to ``<out>/lectures-<size>.md`` (and ``.json``) after every lecture; the exit status
is 1 when a lecture fails or runs past its time budget. The executed notebooks are kept in
``<out>`` for reading (they are not the committed ones, which carry no outputs).

``--set NAME=VALUE`` (repeatable) runs a cell ``NAME = VALUE`` right after the parameters cell
(the one that starts with ``SIZE =``): another seed, or a Try it's change, without editing
the lecture. Its table says what was set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SHARED_COPY = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
BUDGET_MINUTES = {"smoke": 5.0, "cpu": 10.0, "full": 30.0}
"""How long one lecture may run at each size (cpu: the CPU-size target is about 7 minutes)."""
KEY_PREFIX = "key number:"


def lecture_paths(selection: str | None) -> list[Path]:
    """The lecture notebooks named by ``selection`` ("01,02"), or all of them, in order."""
    every = sorted(NOTEBOOKS.glob("[0-9][0-9]*.ipynb"))
    if not selection:
        return every
    wanted = [name.strip() for name in selection.split(",") if name.strip()]
    chosen = [path for path in every if any(path.name.startswith(w) for w in wanted)]
    missing = [w for w in wanted if not any(p.name.startswith(w) for p in every)]
    if missing:
        names = ", ".join(p.name.split("_")[0] for p in every)
        raise SystemExit(f"--lectures: no lecture {', '.join(missing)}; there are {names}.")
    return chosen


def data_source(source: str | None, size: str) -> str | None:
    """``CIFAR10_SOURCE`` for the kernels: an absolute path, a named source as given, or None
    (the lectures' own choice: the stand-in at smoke size, "auto" otherwise). By default the
    JPEG copy in ../shared/data at cpu and full size."""
    if source is None:
        return str(SHARED_COPY) if SHARED_COPY.exists() and size != "smoke" else None
    if source in ("auto", "synthetic"):
        return None
    if source in ("hub", "cifar10") or "://" in source:
        return source
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise SystemExit(f"--source: {path} does not exist.")
    return str(path)


def key_numbers(notebook) -> list[str]:
    """The ``key number:`` lines of every cell's printed output."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            found += [line[len(KEY_PREFIX) :].strip() for line in text.splitlines()
                      if line.startswith(KEY_PREFIX)]  # fmt: skip
    return found


def parse_settings(pairs: list[str]) -> list[str]:
    """``--set`` pairs as Python assignments: ``SEED=1`` -> ``SEED = 1``."""
    lines = []
    for pair in pairs:
        name, _, value = pair.partition("=")
        if not name.strip().isidentifier() or not value.strip():
            raise SystemExit(f"--set: give NAME=VALUE, e.g. --set SEED=1 (got {pair!r}).")
        lines.append(f"{name.strip()} = {value.strip()}")
    return lines


def set_parameters(notebook, assignments: list[str]) -> None:
    """Insert a cell with ``assignments`` after the parameters cell (its source starts with
    ``SIZE =``), or say there is none."""
    import nbformat

    if not assignments:
        return
    index = next((i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
                  and cell.source.lstrip().startswith("SIZE =")), None)  # fmt: skip
    if index is None:
        raise SystemExit("--set: this lecture has no parameters cell (one starting SIZE =).")
    cell = nbformat.v4.new_code_cell("\n".join(["# --set by tools/run_lectures.py", *assignments]))
    notebook.cells.insert(index + 1, cell)


def run_lecture(path: Path, budget_s: float, out: Path, assignments: list[str] = ()) -> dict:
    """Execute one lecture, with ``assignments`` after its parameters cell; its row."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    notebook = nbformat.read(path, as_version=4)
    set_parameters(notebook, list(assignments))
    client = NotebookClient(  # coalesce: a progress bar's redraws keep only its last line
        notebook, timeout=int(budget_s), kernel_name="python3", coalesce_streams=True,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )  # fmt: skip
    start, error = time.perf_counter(), None
    try:
        client.execute()
    except CellTimeoutError:
        error = f"a cell ran past the budget of {budget_s / 60:.0f} minutes"
    except (CellExecutionError, DeadKernelError) as failure:
        lines = [line for line in str(failure).splitlines() if line.strip()]
        error = lines[-1] if lines else type(failure).__name__
    minutes = (time.perf_counter() - start) / 60
    if error is None and minutes * 60 > budget_s:
        error = f"took {minutes:.1f} minutes, over the budget of {budget_s / 60:.0f}"
    nbformat.write(notebook, out / path.name)
    return {
        "lecture": path.stem,
        "minutes": round(minutes, 2),
        "ok": error is None,
        "error": error,
        "key numbers": key_numbers(notebook),
    }


def write_table(
    rows: list[dict], size: str, source: str | None, out: Path, assignments: list[str] = ()
) -> Path:
    chosen_by_lectures = "the lectures' own choice"
    changed = "".join(f" --set {line.replace(' = ', '=')}" for line in assignments)
    lines = [
        f"# Lectures at size {size}",
        "",
        f"Data: `{source or chosen_by_lectures}`. Run with "
        f"`python tools/run_lectures.py --size {size}{changed}`.",
        "",
        "| lecture | minutes | result | key numbers |",
        "|---|---|---|---|",
    ]
    for row in rows:
        result = "ok" if row["ok"] else f"FAILED: {row['error']}"
        numbers = "; ".join(row["key numbers"]) or "–"
        lines.append(f"| {row['lecture']} | {row['minutes']:.1f} | {result} | {numbers} |")
    table = out / f"lectures-{size}.md"
    table.write_text("\n".join(lines) + "\n")
    (out / f"lectures-{size}.json").write_text(json.dumps(rows, indent=1))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=tuple(BUDGET_MINUTES), default="cpu")
    parser.add_argument(
        "--lectures", help="comma-separated lecture numbers, e.g. 01,02 (default: all)"
    )
    parser.add_argument("--source", help="CIFAR-10: a path, hub, or synthetic/auto for the "
                        "lectures' own choice (default: ../shared/data's JPEG copy)")  # fmt: skip
    parser.add_argument("--out", default="runs/lectures", help="folder for the table and notebooks")
    parser.add_argument("--budget-min", type=float, help="minutes one lecture may take "
                        "(default: smoke 5, cpu 10, full 30)")  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="run NAME = VALUE after the parameters cell, e.g. --set SEED=1",
    )  # fmt: skip
    args = parser.parse_args(argv)
    assignments = parse_settings(args.set)
    paths = lecture_paths(args.lectures)
    source = data_source(args.source, args.size)
    budget_s = 60 * (args.budget_min or BUDGET_MINUTES[args.size])
    out = (ROOT / args.out) if not Path(args.out).is_absolute() else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["COURSE_SIZE"] = args.size  # the kernels inherit this process's environment
    os.environ.pop("COURSE_SMOKE", None)  # COURSE_SIZE decides
    os.environ.pop("CIFAR10_SOURCE", None)
    if source is not None:
        os.environ["CIFAR10_SOURCE"] = source
    rows = []
    for path in paths:
        print(f"{path.stem}: running at size {args.size}...", flush=True)
        rows.append(run_lecture(path, budget_s, out, assignments))
        row = rows[-1]
        print(f"{path.stem}: {'ok' if row['ok'] else 'FAILED: ' + row['error']}, "
              f"{row['minutes']:.1f} min", flush=True)  # fmt: skip
        table = write_table(rows, args.size, source, out, assignments)
    print(f"table: {table}")
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
