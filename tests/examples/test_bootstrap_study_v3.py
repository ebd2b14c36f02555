"""Study v3's scripts: its runs, reference - exact by seed, the plateau exit, the diagnostics' phases, the recipe."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.training.configuration import make_config
from kerasrwm.training.experiment import build_learner
from tests.examples.test_bootstrap_study_v2 import write_evaluation
from tests.fake_tools import fake_tool

STUDY = pathlib.Path(__file__).parents[2] / "examples" / "bootstrap_study_v3"


def load_script(name):
    sys.path.insert(0, str(STUDY))  # the scripts import their neighbour v2_scripts, as when run
    try:
        spec = importlib.util.spec_from_file_location(f"study_v3_{name}", STUDY / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(STUDY))
    return module


def trainings(stage, tmp_path, seeds):
    """The `kerasrwm train` argument lists that `run.sh train <stage>` runs, in order (a stand-in
    `kerasrwm` on the PATH records them)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_tool(bin_dir, "kerasrwm", 'echo "$@"')
    environment = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STUDY_DIR="study", SEEDS=seeds)
    completed = subprocess.run(
        ["bash", str(STUDY / "run.sh"), "train", stage],
        cwd=STUDY.parents[1],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.split() for line in completed.stdout.splitlines()]


def test_stage_d_trains_every_arm_of_a_seed_before_the_next_seed(tmp_path):
    runs = trainings("d", tmp_path, seeds="0 1")
    outputs = [run[run.index("--output") + 1] for run in runs]
    assert outputs == [
        f"study/d_authors_recipe/{arm}/seed{seed}"
        for seed in (0, 1)
        for arm in ("no_bootstrap", "bootstrap", "bootstrap_reference")
    ]
    for run, arm in zip(runs, ["no_bootstrap", "bootstrap", "bootstrap_reference"] * 2):
        assert run[run.index("--config") + 1] == "examples/bootstrap_study_v3/authors_recipe.json"
        assert run[run.index("--beta2") + 1] == ("0" if arm == "no_bootstrap" else "10")
        assert run[run.index("--output") + 1].endswith(f"/seed{run[run.index('--seed') + 1]}")
        assert ("--hand-off-gradient" in run) == (arm == "bootstrap_reference")
    assert runs[2][runs[2].index("--hand-off-gradient") + 1] == "reference"


def test_stage_c_trains_both_arms_with_the_reference_gradient(tmp_path):
    runs = trainings("c", tmp_path, seeds="2")
    assert [run[run.index("--output") + 1] for run in runs] == [
        "study/c_reference_gradient/no_bootstrap/seed2",
        "study/c_reference_gradient/bootstrap/seed2",
    ]
    assert all(run[run.index("--hand-off-gradient") + 1] == "reference" for run in runs)


def test_reference_minus_exact_pairs_seeds_per_arm(tmp_path):
    reference, exact = tmp_path / "reference", tmp_path / "exact"
    reference.mkdir(), exact.mkdir()
    write_evaluation(
        reference, {"no_bootstrap": {0: [0.5, 0.8, 0.9], 1: [0.4, 0.7, 0.8]}, "bootstrap": {1: [0.3, 0.6, 0.7]}}
    )
    write_evaluation(
        exact,
        {
            "no_bootstrap": {1: [0.5, 0.75, 0.8], 0: [0.5, 0.9, 0.85], 2: [0.1, 0.1, 0.1]},
            "bootstrap": {1: [0.35, 0.5, 0.6], 0: [0.2, 0.2, 0.2]},
        },
    )
    load_script("reference_minus_exact").main(str(reference), str(exact))
    differences = json.loads((reference / "reference_minus_exact.json").read_text())
    assert differences["no_bootstrap"]["10"]["per_seed"] == pytest.approx([-10.0, -5.0])  # seeds 0, 1; 2 unpaired
    assert differences["no_bootstrap"]["15"]["mean"] == pytest.approx(2.5)
    assert differences["bootstrap"]["1"]["per_seed"] == pytest.approx([-5.0])
    assert differences["bootstrap"]["10"]["seeds_higher"] == 1


def write_validation_curve(run_dir, points, n_way=5, finished=True):
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"n_way": n_way}))
    if finished:
        (run_dir / "finished").write_text("")
    with tf.summary.create_file_writer(str(run_dir / "logs" / "validation")).as_default():
        for step, accuracy in points:
            tf.summary.scalar("evaluation_student_accuracy_vs_iterations", accuracy, step=step)


def test_plateau_exit_is_the_first_validation_at_twice_chance(tmp_path):
    plateau_exit = load_script("plateau_exit")
    write_validation_curve(tmp_path / "run", [(250, 0.21), (500, 0.39), (750, 0.41), (1000, 0.35), (1250, 0.6)])
    assert plateau_exit.plateau_exit_step(str(tmp_path / "run")) == 750
    write_validation_curve(tmp_path / "three_way", [(250, 0.5), (500, 0.7)], n_way=3)
    assert plateau_exit.plateau_exit_step(str(tmp_path / "three_way")) == 500
    write_validation_curve(tmp_path / "flat", [(250, 0.2), (500, 0.3)])
    with pytest.raises(ValueError, match="never reached 40 %"):
        plateau_exit.plateau_exit_step(str(tmp_path / "flat"))
    write_validation_curve(tmp_path / "running", [(250, 0.5)], finished=False)
    with pytest.raises(ValueError, match="has not finished"):
        plateau_exit.plateau_exit_step(str(tmp_path / "running"))


def test_diagnostic_phase_means():
    summary = load_script("diagnostics_summary")
    points = [[100, 1.0], [500, 3.0], [600, 10.0], [1500, 4.0], [2500, 8.0], [3000, 6.0]]
    assert summary.phase_means(points) == {"1-500": 2.0, "501-1000": 10.0, "1001-2000": 4.0, "2001-3000": 7.0}
    assert summary.phase_means([[100, 1.0], [200, 2.0]]) == {"1-200": 1.5}


def test_the_authors_recipe_builds_with_their_schedule_dropouts_and_query_token():
    """The reduced Conv-4 (32 channels) + the reference stack: conv 1-channel 32: 320 + 64 (BN), then
    3 x (9,248 + 64) = 28,320; input projection (32 + 5) x 256 + 256 = 9,728; 3 x (79,360 + 1,051,392);
    classifier 1,285: 3,431,589 weights."""
    config = make_config(json.loads((STUDY / "authors_recipe.json").read_text()))
    assert (config["learning_rate"], config["warmup_steps"], config["hidden_size"]) == (None, 5000, 256)
    assert (config["dropout"], config["vision_dropout"], config["unknown_label"]) == (0.1, 0.1, "class0")
    model = build_learner(config)
    model.learner.build((None, None, 28, 28, 1))
    assert sum(int(np.prod(w.shape)) for w in model.learner.trainable_weights) == 3_431_589
    adam, schedule = model.optimizer, model.optimizer._learning_rate
    assert (adam.beta_1, adam.beta_2, adam.epsilon) == (0.9, 0.995, 1e-9)
    assert (schedule.model_dim, schedule.warmup_steps) == (256, 5000)
    assert float(schedule(4999)) == pytest.approx(8.84e-4, rel=1e-3)  # the peak, at the 5,000th update
