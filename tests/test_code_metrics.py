"""The readable core keeps its caps (docs/architecture.md): measured by tools/code_metrics.py,
the same script an instructor runs, so a change that breaks a cap fails here."""

import pytest


@pytest.fixture(scope="module")
def metrics(load_script):
    return load_script("tools/code_metrics.py")


def test_every_cap_of_the_readable_core_holds(metrics):
    facts = metrics.measure()
    assert metrics.over_caps(facts["measured"]) == [], (
        "a cap of the readable core is exceeded: run `python tools/code_metrics.py`; a new "
        "network family or feature goes into a module of its own, checks into support/"
    )


def test_the_core_leaves_import_nothing_of_the_package(metrics):
    """optim, augment and mixup read as plain PyTorch: their checks live in support/ and run
    at the doors, so that train (floor 3) can sit under recipes, sweeps and the CLI."""
    graph = metrics.import_graph()
    assert {name: graph[name] for name in ("optim", "augment", "mixup")} == {
        "optim": set(),
        "augment": set(),
        "mixup": set(),
    }
    assert graph["models"] == {"support.blocks"}


def test_a_broken_cap_is_reported(metrics):
    measured = dict(metrics.measure()["measured"])
    measured["import floors"] = metrics.CAPS["import floors"] + 1
    measured["fit lines (without its docstring)"] = 61
    over = metrics.over_caps(measured)
    assert len(over) == 2 and any("import floors" in line for line in over)


def test_floors_count_the_longest_chain_and_find_cycles(metrics):
    graph = {"cli": {"run"}, "run": {"train"}, "train": {"leaf"}, "leaf": set()}
    level, cycles = metrics.floors(graph)
    assert level == {"cli": 4, "run": 3, "train": 2, "leaf": 1} and cycles == []
    assert metrics.longest_chain(graph, level) == ["cli", "run", "train", "leaf"]
    _, cycles = metrics.floors({"data": {"hub"}, "hub": {"data"}})
    assert cycles and set(cycles[0]) == {"data", "hub"}
