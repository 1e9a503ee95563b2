"""Run lectures top to bottom at one size and table how long each took and what it asserted.

    python tools/run_lectures.py --size cpu                      # every lecture, real CIFAR-10
    python tools/run_lectures.py --size cpu --lectures 01,02     # some of them
    python tools/run_lectures.py --size smoke --lectures 00 --source synthetic

Each lecture runs in its own Jupyter kernel (nbclient) from the notebooks folder, with
``COURSE_SIZE`` set to the size and ``CIFAR10_SOURCE`` to an absolute path of the data (by
default the JPEG copy in ``../shared/data`` when it exists). Every line a lecture prints that
starts with ``key number:`` (``settings.key_number``) goes into the table. The table is
written to ``<out>/lectures-<size>.md`` (and ``.json``) after every lecture; the exit status
is 1 when a lecture fails or runs past its time budget. The executed notebooks are kept in
``<out>`` for reading (they are not the committed ones, which carry no outputs).
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


def run_lecture(path: Path, budget_s: float, out: Path) -> dict:
    """Execute one lecture; its row of the table."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    notebook = nbformat.read(path, as_version=4)
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


def write_table(rows: list[dict], size: str, source: str | None, out: Path) -> Path:
    chosen_by_lectures = "the lectures' own choice"
    lines = [
        f"# Lectures at size {size}",
        "",
        f"Data: `{source or chosen_by_lectures}`. Run with "
        f"`python tools/run_lectures.py --size {size}`.",
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
    args = parser.parse_args(argv)
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
        rows.append(run_lecture(path, budget_s, out))
        row = rows[-1]
        print(f"{path.stem}: {'ok' if row['ok'] else 'FAILED: ' + row['error']}, "
              f"{row['minutes']:.1f} min", flush=True)  # fmt: skip
        table = write_table(rows, args.size, source, out)
    print(f"table: {table}")
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
