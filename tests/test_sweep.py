"""Sweeps (course_utils.support.sweep and ``python -m course_utils sweep``): studies in SQLite and
journal files, resuming, two workers sharing a study, pruning, and one-line CLI errors.

Every trial is tiny: a ResNet([1], [4]) (the zoo is patched) on a few hundred synthetic
images, one or two epochs (twenty for the worker killed mid-trial).
"""

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from _cli import run_cli

from course_utils import zoo
from course_utils.config import TrainConfig
from course_utils.data import synthetic_cifar10
from course_utils.models import ResNet
from course_utils.recipes import RECIPES
from course_utils.support import cli, sweep

TINY = ["--smoke", "--data", "synthetic", "--train-images", "200", "--batch-size", "32",
        "--epochs", "1", "--no-progress"]  # fmt: skip


@pytest.fixture(autouse=True)
def tiny_zoo(monkeypatch):
    monkeypatch.setattr(zoo, "build", lambda key: ResNet([1], [4]))


def finished(study):
    return [t for t in study.get_trials() if t.state.is_finished()]


def test_a_smoke_sweep_completes_and_a_second_run_adds_to_the_same_study(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    argv = ["sweep", "--recipe", "wang", "--storage", storage, "--study", "s", *TINY]
    code, out, err = run_cli([*argv, "--trials", "3", "--sampler", "random"], capsys)
    assert code == 0, err
    assert "0 test images" in out  # a sweep never opens the test set
    assert f"SQLite file {tmp_path / 'sweeps.db'}" in out
    assert "best trial" in out and "python -m course_utils train --recipe wang --lr" in out
    assert "--data synthetic --out runs/s-best --smoke" in out  # the study's own folder
    study = optuna.load_study(study_name="s", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3  # median: 3 before pruning
    for trial in study.trials:  # the value is the last epoch's validation accuracy
        assert trial.value == trial.intermediate_values[1]
        assert trial.user_attrs["train_images"] > 0 and "worker" in trial.user_attrs

    code, out, err = run_cli([*argv, "--trials", "2", "--sampler", "tpe"], capsys)
    assert code == 0, err
    assert "3 trial(s) so far" in out and "the study     5 trial(s)" in out
    study = optuna.load_study(study_name="s", storage=storage)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]


def test_a_study_refuses_a_different_sweep(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    argv = ["sweep", "--recipe", "wang", "--storage", storage, "--study", "s", "--trials", "1"]
    assert run_cli([*argv, *TINY], capsys)[0] == 0
    code, out, err = run_cli([*argv, *TINY, "--val-split", "0.2"], capsys)
    assert code == 2 and "created for another sweep (different config, data)" in err
    assert "it holds trials on synthetic: 180 train / 20 validation images" in err  # the original
    assert "name a new study with --study NAME" in err
    assert len(err.strip().splitlines()) == 1 and "trial" not in out


def _worker(argv):
    """One worker process: the command line, with the tiny zoo it inherits by forking."""
    sys.exit(cli.main(argv))


def test_two_workers_share_a_study_in_sqlite_and_in_a_journal_file(tmp_path):
    storages = [f"sqlite:///{tmp_path / 'sweeps.db'}", str(tmp_path / "sweeps.log")]
    fork = multiprocessing.get_context("fork")  # no fresh interpreter: torch is imported
    workers = [
        fork.Process(target=_worker, args=(["sweep", "--recipe", "wang", "--trials", "3",
            "--storage", storage, "--study", "shared", "--sampler", "random", *TINY],))
        for storage in storages
        for _ in range(2)
    ]  # fmt: skip
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0] * 4
    for storage in storages:
        trials = sweep.load_study("shared", storage).get_trials()
        assert sorted(t.number for t in trials) == list(range(6))  # all six, none twice
        assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}  # none failed or hung
        owners = [t.user_attrs["worker"] for t in trials]
        assert sorted(owners.count(owner) for owner in set(owners)) == [3, 3]
        settings = {tuple(sorted(t.params.items())) for t in trials}
        assert len(settings) == 6  # unseeded samplers: no two trials drew the same settings


def test_median_pruning_stops_a_trial_clearly_behind_the_others(tmp_path):
    data = synthetic_cifar10(200, seed=0)
    config = TrainConfig(epochs=2, batch_size=32)
    objective = sweep.Objective(config, data, model=lambda: ResNet([1], [4]))
    storage = f"sqlite:///{tmp_path / 'prune.db'}"
    pruner = sweep.make_pruner("median", startup_trials=2)
    for name, earlier in (("behind", 0.95), ("ahead", 0.0)):
        study = sweep.open_study(name, objective, storage, sampler="random", pruner=pruner)
        for _ in range(2):  # two finished trials at this accuracy after epochs 1 and 2
            curve = {1: earlier, 2: earlier}
            study.add_trial(optuna.trial.create_trial(value=earlier, intermediate_values=curve))
        (trial,) = sweep.add_trials(study, objective, 1)
        if name == "behind":  # far below 95% after epoch 1: stopped there
            assert trial.state.name == "PRUNED" and list(trial.intermediate_values) == [1]
        else:  # ahead of the others: trains all its epochs
            assert trial.state.name == "COMPLETE" and list(trial.intermediate_values) == [1, 2]


@pytest.mark.parametrize(
    "storage",
    ["nonsense", "foo://nowhere", "postgresql://user:secret@localhost:1/db", "/proc/x/y.log"],
)
def test_a_bad_storage_is_one_line_and_exit_2_before_training(storage, capsys):
    argv = ["sweep", "--recipe", "wang", "--trials", "1", "--storage", storage, *TINY]
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and err.startswith("error: --storage") and len(err.splitlines()) == 1
    assert out == ""  # nothing loaded, nothing trained
    assert "secret" not in err  # a password never reaches the screen


def test_an_unknown_sampler_is_one_line_and_exit_2(capsys):
    code, out, err = run_cli(
        ["sweep", "--recipe", "wang", "--trials", "1", "--sampler", "bayes"], capsys
    )
    assert code == 2 and len(err.splitlines()) == 1 and "invalid choice: 'bayes'" in err


def test_default_spaces_surround_each_recipe_and_show_in_help(capsys):
    for recipe in RECIPES.values():
        space = sweep.default_space(recipe)
        assert list(space) == ["lr", "weight_decay", "label_smoothing", "batch_size"]
        assert space["lr"].low < recipe.config.lr < space["lr"].high and space["lr"].log
        assert recipe.config.lr in space["lr"].grid
        assert recipe.config.batch_size in space["batch_size"].choices
    code, out, _ = run_cli(["sweep", "--help"], capsys)
    assert code == 0
    assert "fast94:\n    lr: log-uniform 0.1875 to 3 (grid 0.1875, 0.75, 3)" in out


def test_search_space_from_a_dict_and_its_mistakes():
    space = sweep.search_space(
        {"lr": {"low": 0.01, "high": 1.0, "log": True}, "batch_size": {"low": 32, "high": 128}}
    )
    assert space["lr"].grid == (0.01, 0.1, 1.0)
    assert space["batch_size"].integer and space["batch_size"].grid == (32, 80, 128)
    for spec, message in [
        ({"learning_rate": [0.1]}, "not a TrainConfig field"),
        ({"lr": {"low": 0.0, "high": 1.0, "log": True}}, "start above 0"),
        ({"lr": {"low": 1.0, "high": 0.1}}, "low must be below high"),
        ({"lr": {"low": 0.1, "high": 1.0, "grid": [2.0]}}, "grid value"),
    ]:
        with pytest.raises(sweep.SweepError, match=message):
            sweep.search_space(spec)
    with pytest.raises(sweep.SweepError, match="search space: label_smoothing"):
        sweep.Objective(TrainConfig(), synthetic_cifar10(40), model="wang",
                        space=sweep.search_space({"label_smoothing": [0.0, 1.5]}))  # fmt: skip
    with pytest.raises(sweep.SweepError, match="has no model"):
        sweep.Objective(TrainConfig(), synthetic_cifar10(40))


def test_course_utils_works_without_optuna_and_the_sweep_command_says_what_is_missing():
    code = (
        "import sys; sys.modules['optuna'] = None\n"  # as if Optuna were not installed
        "from course_utils import recipes, train\nfrom course_utils.support import cli, sweep\n"
        "sys.exit(cli.main(['sweep', '--recipe', 'wang', '--trials', '1']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr == "error: sweeps need Optuna, which is not installed: pip install optuna\n"
    )


def test_a_worker_killed_mid_trial_leaves_no_ghost_the_next_worker_runs_its_trial_again(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(sweep, "HEARTBEAT_SECONDS", 1)  # the defaults are 60 and 180 seconds
    monkeypatch.setattr(sweep, "GRACE_SECONDS", 2)
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    argv = ["sweep", "--recipe", "wang", "--trials", "1", "--storage", storage, "--study", "s",
            "--sampler", "random", *TINY[:-3], "--epochs", "20", "--no-progress"]  # fmt: skip
    reader = optuna.storages.RDBStorage(storage)  # the tables exist before the worker starts
    worker = multiprocessing.get_context("fork").Process(target=_worker, args=(argv,))
    worker.start()
    deadline = time.monotonic() + 120
    trials = []
    while not any(t.intermediate_values for t in trials):  # until its first epoch is reported
        assert worker.is_alive() and time.monotonic() < deadline, "the worker never got going"
        time.sleep(0.05)
        studies = reader.get_all_studies()
        trials = sweep.load_study("s", reader).get_trials() if studies else []
    worker.kill()  # SIGKILL, mid-trial: no handler runs, as when a Colab session drops
    worker.join()
    assert worker.exitcode == -signal.SIGKILL
    assert [t.state.name for t in sweep.load_study("s", reader).trials] == ["RUNNING"]

    time.sleep(sweep.GRACE_SECONDS + 1)  # the dead worker's heartbeat goes stale
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    ghost, retry = sweep.load_study("s", reader).trials
    assert ghost.state.name == "FAIL" and retry.state.name == "COMPLETE"
    assert retry.params == ghost.params and retry.system_attrs["failed_trial"] == 0
    assert list(retry.intermediate_values) == list(range(1, 21))  # again from its first epoch
    assert retry.user_attrs["worker"].endswith(f":{os.getpid()}")
    assert "the study     2 trial(s):" in out and "1 fail" in out and "running" not in out
    assert [t.number for t in sweep.finished_trials(sweep.load_study("s", reader))] == [1]


def test_a_database_keeps_a_heartbeat_but_an_in_memory_one_does_not(tmp_path):
    """An in-memory SQLite database has one worker, and the heartbeat's thread would open
    another, empty database ("no such table: trial_heartbeats")."""
    on_disk = sweep.open_storage(f"sqlite:///{tmp_path / 'sweeps.db'}")
    assert on_disk.get_heartbeat_interval() == sweep.HEARTBEAT_SECONDS
    assert sweep.open_storage("sqlite:///:memory:").get_heartbeat_interval() is None


def test_a_refused_study_is_worded_for_python_too(tmp_path):
    data = synthetic_cifar10(200, seed=0)
    storage = f"sqlite:///{tmp_path / 'sweeps.db'}"
    first = sweep.Objective(TrainConfig(epochs=1, batch_size=32), data, model="wang")
    sweep.open_study("s", first, storage)
    other = sweep.Objective(TrainConfig(epochs=1, batch_size=32), data.subset(100), model="wang")
    with pytest.raises(sweep.SweepError) as caught:
        sweep.open_study("s", other, storage)
    message = str(caught.value)
    assert "(different data): it holds trials on synthetic: 180 train / 20 validation" in message
    assert "open_study(name=...)" in message and "--study" not in message
    with pytest.raises(sweep.SweepError, match="unknown sampler 'tpee'; did you mean 'tpe'"):
        sweep.make_sampler("tpee", first.space)
