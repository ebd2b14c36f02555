"""The Task seam: each protocol's learner, data, best-model metric, evaluation terms; no protocol
name compared outside `kerasrwm/training/tasks/`."""

import pathlib
import re
import warnings

import numpy as np
import pytest

from kerasrwm.data import load_source
from kerasrwm.training.configuration import make_config
from kerasrwm.training.experiment import build_learner
from kerasrwm.training.experiment import training_stream
from kerasrwm.training.experiment import validation_episodes
from kerasrwm.training.tasks import TASKS
from kerasrwm.training.tasks import get_task
from tests.commands.tiny_run import tiny_config

PACKAGE = pathlib.Path(__file__).parents[2] / "kerasrwm"


@pytest.mark.parametrize("protocol", list(TASKS))
def test_a_task_builds_its_learner_and_scores_it_on_its_own_batches(protocol):
    config = make_config({**tiny_config(protocol), "implementation": "loop"})
    task = get_task(protocol)
    source = load_source(config["data"], **config["data_options"])
    model = build_learner(config)
    assert isinstance(model, task.learner_class) and model.n_way == config["n_way"]
    validation = validation_episodes(config, source.split("validation"))
    assert int(validation.cardinality()) == config["validation_episodes"] // config["batch_size"]
    batch = next(iter(validation))
    model(batch)
    terms = task.evaluation_terms(model, batch)
    # The metric that picks the best model is a validation log of an evaluation term.
    assert task.monitor.removeprefix("val_") in terms and "loss" in terms
    assert all(np.ndim(value) == 0 and np.isfinite(value) for value in terms.values())
    training = next(iter(training_stream(config, source.split("train"))))
    assert model.train_step(training).keys() == {metric.name for metric in model.metrics} >= terms.keys()


def test_each_task_owns_its_configuration_keys():
    owned = [key for task in TASKS.values() for key in task.config_keys]
    assert len(owned) == len(set(owned))
    for task in TASKS.values():
        assert set(task.loss_keys) <= set(task.config_keys)


def test_unknown_protocol_is_named():
    with pytest.raises(ValueError, match=r"`protocol` must be one of \('bootstrap', 'delayed_label'\)"):
        get_task("delayed")


def test_no_protocol_name_is_compared_outside_the_tasks():
    names = "|".join(map(re.escape, TASKS))
    comparison = re.compile(rf"""(==|!=|\bin\b)\s*\(?\s*["']({names})["']|["']({names})["']\s*(==|!=)""")
    found = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        if "tasks" not in path.relative_to(PACKAGE).parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if comparison.search(line)
    ]
    assert not found, found


def test_bootstrap_warns_when_beta2_or_beta3_cannot_act_without_extras():
    with pytest.warns(UserWarning, match=r"k_extra=0 .*beta2=5 weighs a distillation that is always 0, and beta3=0"):
        make_config({"k_extra": 0, "beta2": 5.0, "beta3": 0.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_config({"k_extra": 0, "beta2": 0.0, "beta3": 0.0})
        make_config({"k_extra": 5, "beta2": 5.0})


@pytest.mark.parametrize("k_shot, occurrences", [(1, 1), (3, 3), (7, 5)])
def test_the_delayed_label_learner_reports_the_occurrences_its_sequences_hold(k_shot, occurrences):
    config = make_config({"protocol": "delayed_label", "k_shot": k_shot})
    assert get_task("delayed_label").learner(config).num_occurrences == occurrences
