"""The recipes race (benchmarks/real_data.py): every network narrowed to the same cost per
image, and the verdict computed from the runs it is given."""

import pytest


@pytest.fixture(scope="module")
def race(load_script):
    return load_script("benchmarks/real_data.py")


def test_every_recipes_network_is_narrowed_to_the_same_flops(race):
    target = race.forward_flops(race.NETS["fast94"], race.REFERENCE_WIDTH)
    for name in race.REPORTS:
        width = race.matching_width(race.NETS[name], target)
        flops = race.forward_flops(race.NETS[name], width)
        assert abs(flops / target - 1) < 0.05, f"{name}: {flops / 1e9:.3f} GFLOPs"
        assert 0.05 < width < 1  # narrowed, not widened


def test_the_verdict_compares_fast94_with_the_report_best_on_validation(race, capsys):
    rows = [
        {"recipe": name, "seed": seed, "val": val + 0.01 * seed, "test": test + 0.01 * seed}
        for name, val, test in [
            ("pillai", 0.10, 0.10),
            ("merabishvili", 0.50, 0.52),
            ("rout", 0.40, 0.41),
            ("sudrik", 0.45, 0.60),  # best on test, but not on validation
            ("wang", 0.55, 0.54),
            ("fast94", 0.60, 0.58),
        ]
        for seed in (0, 1)
    ]
    verdict = race.print_verdict(rows, seeds=2)
    out = capsys.readouterr().out
    assert verdict["best_report"] == "wang"
    assert verdict["gap"] == pytest.approx(4.0)
    assert verdict["standard_error"] == pytest.approx(((0.707**2 + 0.707**2) / 2) ** 0.5, 1e-3)
    assert out.splitlines()[-1] == "fast94 vs best report recipe: +4.0 points (2 seeds, +- 0.7)"
    assert verdict["gaps"]["sudrik"]["gap"] == pytest.approx(-2.0)
    assert "not more than 2 x" in out.split("sudrik")[1].splitlines()[0]
