"""`tune`: each trial trains with its beta2 and K', best.json is the tuner's best trial, reruns resume."""

import glob
import itertools
import json
import os

import pytest

from kerasrwm.models import BootstrappedLearner
from kerasrwm.training.configuration import make_config
from kerasrwm.training.tuning import OBJECTIVE
from kerasrwm.training.tuning import PROJECT_NAME
from kerasrwm.training.tuning import trial_results
from kerasrwm.training.tuning import tune

N_WAY = 3
TINY = make_config(
    {
        "data_options": {"num_classes": 60, "image_size": 16},
        "n_way": N_WAY,
        "k_shot": 2,
        "hidden_size": 16,
        "num_layers": 1,
        "num_heads": 2,
        "ff_dim": 16,
        "backbone_channels": 4,
        "steps": 2,
        "steps_per_epoch": 2,
        "batch_size": 4,
        "validation_episodes": 8,
        "learning_rate": 0.01,
        "jit_compile": False,
    }
)
BETA2 = [0.0, 2.0]
K_EXTRA = [1, 3]


class Interrupt(BaseException):
    """Stands for a kill: KerasTuner records failed trials on `Exception` but lets this through."""


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """The 2 x 2 grid run as: 2 trials; killed as the 3rd trains; resumed to 4; rerun.

    Returns:
        `(output_dir, calls)`: one dict per `tune` call with `trained` (the `(beta2, extra
        length)` of each model that started training), `trials` (`trial_results` after it) and
        `best` (its return value, None if killed).
    """
    output_dir = str(tmp_path_factory.mktemp("search"))
    calls = []
    original_train_step = BootstrappedLearner.train_step

    def spy(model, data):  # runs when `fit` traces the step
        if not any(seen is model for seen in calls[-1]["models"]):
            calls[-1]["models"].append(model)  # kept alive, so that a new model is never `seen`
            calls[-1]["trained"].append((model.beta2, data["extra_images"].shape[1]))
        if calls[-1]["kill"]:
            raise Interrupt()
        return original_train_step(model, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BootstrappedLearner, "train_step", spy)
        for max_trials, kill in ((2, False), (4, True), (4, False), (4, False)):
            calls.append({"models": [], "trained": [], "kill": kill, "best": None})
            try:
                calls[-1]["best"] = tune(TINY, BETA2, K_EXTRA, max_trials, output_dir, verbose=0)
            except Interrupt:
                pass
            calls[-1]["trials"] = trial_results(output_dir)
    return output_dir, calls


def grid_values(trials):
    return [(trial["beta2"], trial["k_extra"]) for trial in trials]


@pytest.mark.slow
def test_each_trial_trains_its_beta2_and_k_extra(search):
    _, calls = search
    trials = calls[-1]["trials"]
    assert [trial["trial_id"] for trial in trials] == ["0", "1", "2", "3"]
    assert all(trial["status"] == "COMPLETED" for trial in trials)
    assert sorted(grid_values(trials)) == sorted(itertools.product(BETA2, K_EXTRA))
    trained = calls[0]["trained"] + calls[2]["trained"]
    assert trained == [(beta2, N_WAY * k_extra) for beta2, k_extra in grid_values(trials)]


@pytest.mark.slow
def test_best_json_is_the_best_trial_of_the_tuner_records(search):
    output_dir, calls = search
    with open(os.path.join(output_dir, "best.json")) as file:
        best = json.load(file)
    records = []
    for path in glob.glob(os.path.join(output_dir, PROJECT_NAME, "trial_*", "trial.json")):
        with open(path) as file:
            records.append(json.load(file))
    assert len(records) == 4
    top_score = max(record["score"] for record in records)
    record = next(record for record in records if record["trial_id"] == best["trial_id"])
    assert record["score"] == top_score == best[OBJECTIVE]
    assert 0.0 <= top_score <= 1.0
    assert {"beta2": best["beta2"], "k_extra": best["k_extra"]} == record["hyperparameters"]["values"]
    assert calls[-1]["best"] == calls[2]["best"] == best


@pytest.mark.slow
def test_rerun_resumes_without_rerunning_finished_trials(search):
    output_dir, calls = search
    first, killed, resumed, rerun = calls
    assert first["trained"] == [(0.0, N_WAY * 1), (0.0, N_WAY * 3)]  # grid order, stopped at max_trials
    assert [trial["status"] for trial in first["trials"]] == ["COMPLETED", "COMPLETED"]
    # The kill hit the third trial as it began training; the first two stay completed.
    assert killed["trained"] == [(2.0, N_WAY * 1)]
    assert [trial["status"] for trial in killed["trials"]] == ["COMPLETED", "COMPLETED", "RUNNING"]
    # The rerun redoes only the interrupted trial, then the last one; a further rerun trains nothing.
    assert resumed["trained"] == [(2.0, N_WAY * 1), (2.0, N_WAY * 3)]
    assert resumed["trials"][:2] == first["trials"]
    assert rerun["trained"] == []
    assert rerun["trials"] == resumed["trials"]
    assert sorted(os.listdir(os.path.join(output_dir, "logs"))) == ["0", "1", "2", "3"]


@pytest.mark.slow
def test_rerun_with_other_unused_beta2_and_k_extra_in_the_config_resumes(search):
    """The configuration's own beta2 and K' never reach a trial, so they neither enter search.json nor block a rerun."""
    output_dir, calls = search
    with open(os.path.join(output_dir, "search.json")) as file:
        assert not {"beta2", "k_extra"} & set(json.load(file)["config"])
    before = trial_results(output_dir)
    best = tune({**TINY, "beta2": 7.0, "k_extra": 9}, BETA2, K_EXTRA, 4, output_dir, verbose=0)
    assert best == calls[-1]["best"]
    assert trial_results(output_dir) == before


@pytest.mark.slow
def test_rerun_with_other_settings_is_refused(search):
    output_dir, _ = search
    with pytest.raises(ValueError, match="different settings"):
        tune(TINY, [0.0, 5.0], K_EXTRA, 4, output_dir, verbose=0)


@pytest.mark.parametrize(
    "beta2_values, k_extra_values, max_trials, message",
    [
        ([], [1], 1, r"`beta2_values` .*received \[\]"),
        ([1.0], [], 1, r"`k_extra_values` .*received \[\]"),
        ([1.0], [1], 0, r"`max_trials` .*received max_trials=0"),
        ([1.0, -0.5], [1], 2, r"`beta2_values` .*>= 0; received \[1.0, -0.5\]"),
        ([1.0, 1], [1], 2, r"`beta2_values` must not repeat a value; received \[1.0, 1.0\]"),
        ([1.0], [1, 2.5], 2, r"`k_extra_values` .*ints >= 0; received \[1, 2.5\]"),
        # 2 shots + 18 extras + 1 query > the 20 images of each synthetic class.
        ([1.0], [1, 18], 2, r"`k_extra_values` holds k_extra=18, .*2 \+ 18 \+ 1 = 21 images"),
    ],
)
def test_bad_input_raises_naming_the_argument(tmp_path, beta2_values, k_extra_values, max_trials, message):
    output_dir = str(tmp_path / "search")
    with pytest.raises(ValueError, match=message):
        tune(TINY, beta2_values, k_extra_values, max_trials, output_dir, verbose=0)
    assert not os.path.exists(output_dir)


def test_a_delayed_label_configuration_is_refused(tmp_path):
    config = make_config({**TINY, "k_test_sweep": [], "protocol": "delayed_label"})
    with pytest.raises(ValueError, match=r"K' of a protocol in \('bootstrap',\); received protocol='delayed_label'"):
        tune(config, [1.0], [1], 1, str(tmp_path / "search"), verbose=0)


@pytest.mark.slow
def test_the_distillation_start_step_is_searched_when_given(tmp_path, monkeypatch):
    trained = []
    original_train_step = BootstrappedLearner.train_step

    def spy(model, data):
        if not any(seen is model for seen, _ in trained):
            trained.append((model, (model.beta2, model.beta2_start_step, data["extra_images"].shape[1])))
        return original_train_step(model, data)

    monkeypatch.setattr(BootstrappedLearner, "train_step", spy)
    best = tune(TINY, [2.0], [1], 2, str(tmp_path), verbose=0, beta2_start_values=[0, 5])
    assert [settings for _, settings in trained] == [(2.0, 0, N_WAY), (2.0, 5, N_WAY)]
    assert [(t["beta2"], t["beta2_start_step"], t["k_extra"]) for t in trial_results(str(tmp_path))] == [
        (2.0, 0, 1),
        (2.0, 5, 1),
    ]
    assert best["beta2_start_step"] in (0, 5)
    with open(tmp_path / "search.json") as file:
        saved = json.load(file)
    assert saved["beta2_start_values"] == [0, 5] and "beta2_start_step" not in saved["config"]
    with pytest.raises(ValueError, match=r"`beta2_start_values` .*>= 0; received \[-1\]"):
        tune(TINY, [2.0], [1], 1, str(tmp_path / "bad"), verbose=0, beta2_start_values=[-1])


def test_a_search_directory_in_use_is_refused_as_a_run_directory_is(tmp_path):
    from kerasrwm.training.run_lock import RunLock

    output_dir = str(tmp_path / "search")
    with RunLock(output_dir):  # another `kerasrwm tune` (or `train`) writing there
        with pytest.raises(ValueError, match=r"is in use by another trainer \(process \d+@"):
            tune(TINY, [0.0], [1], 1, output_dir, verbose=0)
    assert not glob.glob(os.path.join(output_dir, PROJECT_NAME, "trial_*"))
