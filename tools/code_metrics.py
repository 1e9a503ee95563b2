"""Measure the size and shape of course_utils against the caps of the readable core.

    python tools/code_metrics.py          # the table, then the caps, each OK or OVER
    python tools/code_metrics.py --json   # the same numbers as JSON

Lines are physical lines of the file (``wc -l``). Import floors are the longest chain of
imports between course_utils modules, imports inside functions included and ``__main__``
left out; a module that imports no other course_utils module is floor 1.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "course_utils"
CORE = ("models", "train", "loader", "augment", "mixup", "optim", "config")
CAPS = {
    "core lines (models, train, loader, augment, mixup, optim, config)": 1500,
    "data.py lines": 400,
    "models.py lines": 200,
    "capstone.py lines (lecture 06's network)": 120,
    "fit lines (without its docstring)": 60,
    "modules the training step uses": 4,
    "import floors": 6,
    "import cycles": 0,
}


def module_name(path: Path) -> str:
    """``course_utils/support/checks.py`` -> ``support.checks``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__") or "__init__"


def modules() -> dict[str, Path]:
    """Every module of the package except ``__main__``, by its dotted name."""
    found = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    found.pop("__main__", None)
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The course_utils modules ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            short = name.removeprefix("course_utils.")
            if name.startswith("course_utils") and short in known:
                found.add(short)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    names = set(known) - {"__init__", "support"}
    return {name: imports_of(path, names) - {name} for name, path in known.items()}


def floors(graph: dict[str, set[str]]) -> tuple[dict[str, int], list[list[str]]]:
    """Each module's floor and the import cycles met on the way (a cycle's edge is not
    followed, so every module still gets a floor)."""
    level: dict[str, int] = {}
    cycles: list[list[str]] = []
    trail: list[str] = []

    def floor(name: str) -> int:
        if name in level:
            return level[name]
        if name in trail:
            cycles.append([*trail[trail.index(name) :], name])
            return 0
        trail.append(name)
        level[name] = 1 + max((floor(dep) for dep in graph.get(name, ())), default=0)
        trail.pop()
        return level[name]

    for name in graph:
        floor(name)
    return level, cycles


def longest_chain(graph: dict[str, set[str]], level: dict[str, int]) -> list[str]:
    chain = [max(level, key=level.get)]
    while below := [dep for dep in graph[chain[-1]] if level[dep] == level[chain[-1]] - 1]:
        chain.append(sorted(below)[0])
    return chain


def fit_facts() -> tuple[int, list[str]]:
    """Lines of ``train.fit`` without its docstring, and the course_utils modules whose names
    its training step uses: the body of its innermost loop, from the batch to the optimizer's
    step and the schedule's, train itself included."""
    path = PACKAGE / "train.py"
    tree = ast.parse(path.read_text())
    fit = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "fit")
    lines = fit.end_lineno - fit.lineno + 1
    doc = fit.body[0]
    if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant):
        lines -= doc.end_lineno - doc.lineno + 1
    imported = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_utils"):
            for alias in node.names:
                source = node.module.removeprefix("course_utils").lstrip(".")
                target = f"{source}.{alias.name}".lstrip(".") if source else alias.name
                home = target if (PACKAGE / f"{target.replace('.', '/')}.py").exists() else source
                imported[alias.asname or alias.name] = home
    own = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    loops = [n for n in ast.walk(fit) if isinstance(n, ast.For)]
    step = next(
        n for n in loops if not any(isinstance(m, ast.For) for m in ast.walk(n) if m is not n)
    )
    names = {n.id for n in ast.walk(step) if isinstance(n, ast.Name)}
    used = {imported[name] for name in names if name in imported}
    used |= {"train" for name in names if name in own}
    return lines, sorted(used | {"train"})


def measure() -> dict:
    graph = import_graph()
    level, cycles = floors(graph)
    known = modules()
    lines = {name: len(path.read_text().splitlines()) for name, path in known.items()}
    fit_lines, fit_modules = fit_facts()
    return {
        "lines": lines,
        "core": {name: lines[name] for name in CORE},
        "floors": level,
        "longest chain": longest_chain(graph, level),
        "cycles": cycles,
        "fit modules": fit_modules,
        "measured": {
            "core lines (models, train, loader, augment, mixup, optim, config)": sum(
                lines[name] for name in CORE
            ),
            "data.py lines": lines["data"],
            "models.py lines": lines["models"],
            "capstone.py lines (lecture 06's network)": lines["capstone"],
            "fit lines (without its docstring)": fit_lines,
            "modules the training step uses": len(fit_modules),
            "import floors": max(level.values()),
            "import cycles": len(cycles),
        },
    }


def over_caps(measured: dict) -> list[str]:
    """One line per cap the package exceeds (empty when every cap holds)."""
    return [f"{key}: {measured[key]} > {cap}" for key, cap in CAPS.items() if measured[key] > cap]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args(argv)
    facts = measure()
    if args.json:
        print(json.dumps(facts, indent=1, default=list))
        return 0
    print(f"{'module':24} {'lines':>6} {'floor':>6}")
    for name in sorted(facts["lines"], key=lambda n: (-facts["floors"].get(n, 0), n)):
        core = " (core)" if name in CORE else ""
        floor = facts["floors"].get(name, "-")
        print(f"{name:24} {facts['lines'][name]:6} {floor:>6}{core}")
    print("\nlongest import chain:", " -> ".join(facts["longest chain"]))
    print("the training step uses:", ", ".join(facts["fit modules"]))
    print()
    for key, cap in CAPS.items():
        value = facts["measured"][key]
        print(f"{'OK  ' if value <= cap else 'OVER'} {key}: {value} (cap {cap})")
    return 1 if over_caps(facts["measured"]) else 0


if __name__ == "__main__":
    sys.exit(main())
