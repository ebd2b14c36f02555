"""`evaluate_runs` checks every run and argument before scoring any; `write_results` keeps each file whole."""

import json
import os

import pytest

from kerasrwm.data import load_source
from kerasrwm.training import evaluation
from kerasrwm.training.atomic_files import WriteError
from kerasrwm.training.evaluation import write_results
from kerasrwm.training.experiment import build_learner
from kerasrwm.training.experiment import validation_episodes
from kerasrwm.training.k_test_sweep import k_test_sweep
from kerasrwm.training.run_directory import MODEL_FILES
from kerasrwm.training.run_directory import load_trained
from kerasrwm.training.run_directory import write_config
from tests.commands.tiny_run import tiny_config
from tests.training import faults


@pytest.fixture(scope="module")
def built_run(tmp_path_factory):
    """A run directory holding the tiny configuration and its untrained model, built with its optimizer."""
    run_dir = tmp_path_factory.mktemp("run")
    config = tiny_config()
    model = build_learner(config)
    source = load_source(config["data"], **config["data_options"])
    model(next(iter(validation_episodes(config, source.split("validation")))))
    model.optimizer.build(model.trainable_variables)
    model.save(run_dir / MODEL_FILES["last"])
    write_config(str(run_dir), config)
    return str(run_dir)


@pytest.fixture
def no_scoring(monkeypatch):
    def score_sweep(*args, **kwargs):
        raise AssertionError("a run was scored before every run and argument was checked")

    monkeypatch.setattr(evaluation, "score_sweep", score_sweep)


@pytest.mark.parametrize(
    "second_run, arguments, message",
    [
        ("missing", {}, "holds no config.json"),
        ("same", {"k_tests": [1, 1000]}, "`k_test` holds K_test=1000, too many shots for this split"),
        ("same", {"runs": 0}, "`runs` must be an integer >= 1"),
        ("same", {"episodes": 6, "batch_size": 4}, "`episodes` must be a multiple of `batch_size` (4)"),
    ],
)
def test_a_bad_run_or_argument_fails_before_any_run_is_scored(
    built_run, tmp_path, no_scoring, second_run, arguments, message
):
    second = built_run if second_run == "same" else str(tmp_path / second_run)
    settings = {"k_tests": [1, 2], "runs": 1, "episodes": 4, "batch_size": 4, "split": "test", "seed": 0}
    with pytest.raises(ValueError) as error:
        evaluation.evaluate_runs([built_run, second], **{**settings, **arguments}, which="last")
    assert message in str(error.value)


@pytest.mark.slow
def test_each_run_is_scored_as_k_test_sweep_scores_its_model(built_run):
    results = evaluation.evaluate_runs([built_run], [1, 2], 2, 8, 4, "test", 3, verbose=0, which="last")
    config, model = load_trained(built_run, "last")
    store = load_source(config["data"], **config["data_options"]).split("test")
    expected = k_test_sweep(
        model, store, [1, 2], runs=2, episodes=8, batch_size=4, seed=3, n_queries=config["n_queries"]
    )
    assert results == {built_run: expected}


def sweep(accuracy):
    return {"run": [{"k_test": 1, "accuracy_mean": accuracy, "accuracy_std": 0.1, "runs": 2, "episodes": 4}]}


def test_a_disk_that_fills_up_during_the_results_keeps_each_file_whole(tmp_path, monkeypatch):
    write_results(sweep(0.5), str(tmp_path))
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    assert sorted(before) == ["k_test.png", "results.csv", "results.json"]
    with monkeypatch.context() as patch:
        faults.install(("save:results.csv", 1), faults.raise_disk_full, lambda f: patch.setattr(os, "replace", f))
        with pytest.raises(WriteError, match=f"the disk holding {tmp_path}/results.csv is full"):
            write_results(sweep(0.75), str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(before)
    assert json.loads((tmp_path / "results.json").read_text()) == sweep(0.75)  # written whole before the disk filled
    for name in ("results.csv", "k_test.png"):
        assert (tmp_path / name).read_bytes() == before[name]
