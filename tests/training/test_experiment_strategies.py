"""The run contract on every path: each protocol under each strategy trains, resumes after a kill
to the weights of an uninterrupted run, and evaluates.

Each run is a subprocess (`tests.commands.tiny_run`): mirrored on 2 logical CPU devices
(`KERASRWM_LOGICAL_CPUS=2`), multi-worker on 2 worker processes on localhost. The kill is a real
`os._exit` after the first step of the second epoch, once the first epoch's files are written.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from kerasrwm.data import load_source
from kerasrwm.training import distributed
from kerasrwm.training.evaluation import evaluate_runs
from kerasrwm.training.run_directory import load_trained
from kerasrwm.training.tasks import TASKS
from kerasrwm.training.tasks import get_task
from tests.training.local_cluster import ROOT
from tests.training.local_cluster import TIMEOUT
from tests.training.local_cluster import environment
from tests.training.local_cluster import run_workers

KILLED = 17
# What a finished run holds besides its model files and logs: Keras `fit` removes its backup,
# a multi-worker run keeps its checkpoints.
RESUME_STATE = {"none": [], "mirrored": [], "multiworker": ["checkpoints"]}


def train(run_dir, protocol, strategy, *arguments):
    """Trains the tiny run of `protocol` under `strategy` into `run_dir`; its processes' return codes and stderr.

    `arguments`: further arguments of `tests.commands.tiny_run` (a moment to die at, `--set`).
    """
    arguments = ["-m", "tests.commands.tiny_run", run_dir, *arguments, "--protocol", protocol, "--strategy", strategy]
    if strategy == "multiworker":
        results = run_workers(arguments, run_dir.parent)
    else:
        variables = {distributed.LOGICAL_CPUS_VARIABLE: "2"} if strategy == "mirrored" else {}
        results = [
            subprocess.run(
                [sys.executable, *map(str, arguments)],
                cwd=ROOT,
                env=environment(**variables),
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )
        ]
    return [result.returncode for result in results], results[0].stderr[-3000:]


def evaluation(run_dir):
    """The protocol's evaluation terms of the best model, averaged over fixed test-split batches."""
    config, model = load_trained(run_dir)
    task = get_task(config["protocol"])
    store = load_source(config["data"], **config["data_options"]).split("test")
    totals = {}
    for batch in task.validation_batches(config, store, batches=2):
        for name, value in task.evaluation_terms(model, batch).items():
            totals[name] = totals.get(name, 0.0) + float(value) / 2
    return totals


@pytest.mark.slow
@pytest.mark.parametrize("strategy", distributed.STRATEGIES)
@pytest.mark.parametrize("protocol", list(TASKS))
def test_a_killed_run_resumes_to_the_uninterrupted_run_and_evaluates(protocol, strategy, tmp_path):
    uninterrupted, run_dir = tmp_path / "uninterrupted", tmp_path / "run"
    codes, errors = train(uninterrupted, protocol, strategy)
    assert set(codes) == {0}, errors
    codes, errors = train(run_dir, protocol, strategy, "epoch", "2")
    assert set(codes) == {KILLED}, errors
    assert not os.path.exists(run_dir / "finished") and os.path.exists(run_dir / "best.keras")
    codes, errors = train(run_dir, protocol, strategy)
    assert set(codes) == {0}, errors

    files = sorted(
        ["best.json", "best.keras", "config.json", "finished", "logs", "model.keras", *RESUME_STATE[strategy]]
    )
    assert sorted(os.listdir(run_dir)) == sorted(os.listdir(uninterrupted)) == files
    for which in ("last", "best"):
        (config, model), (_, reference) = load_trained(str(run_dir), which), load_trained(str(uninterrupted), which)
        assert int(model.optimizer.iterations) == int(reference.optimizer.iterations)
        for actual, expected in zip(model.get_weights(), reference.get_weights(), strict=True):
            np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
    monitor = get_task(protocol).monitor
    records = [json.loads((directory / "best.json").read_text()) for directory in (run_dir, uninterrupted)]
    assert records[0]["epoch"] == records[1]["epoch"] and set(records[0]) == {"epoch", monitor}
    np.testing.assert_allclose(records[0][monitor], records[1][monitor], rtol=1e-5)
    assert int(load_trained(str(run_dir), "last")[1].optimizer.iterations) == config["steps"]

    terms, expected = evaluation(str(run_dir)), evaluation(str(uninterrupted))
    assert terms.keys() == expected.keys() and "loss" in terms
    assert all(math.isfinite(value) for value in terms.values())
    for name in terms:
        np.testing.assert_allclose(terms[name], expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
    if get_task(protocol).sweeps_k_test:
        rows = evaluate_runs([str(run_dir), str(uninterrupted)], [1, 2], 1, 8, 4, "test", 0, verbose=0).values()
        assert [row["accuracy_mean"] for row in list(rows)[0]] == [row["accuracy_mean"] for row in list(rows)[1]]


@pytest.mark.slow
def test_a_diverged_multiworker_run_stops_every_worker_and_is_not_finished(tmp_path):
    run_dir = tmp_path / "diverged"
    codes, errors = train(run_dir, "bootstrap", "multiworker", "--set", "learning_rate=1e8")
    assert codes == [1, 1], errors  # both raise at the same step: the metrics are all-reduced
    assert "training diverged" in errors and "not finite at step" in errors
    assert not os.path.exists(run_dir / "finished") and not os.path.exists(run_dir / "lock")
