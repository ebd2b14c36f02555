"""`kerasrwm demo`: no-bootstrap baseline vs bootstrapped learner on the built-in synthetic data.

Both learners get the same architecture, data stream and number of steps; they differ only in
the distillation weight beta2 (0 for the baseline of the paper's Table 2). Both are then
evaluated at several K_test on the same fixed test episodes.
"""

import os

from kerasrwm.argument_types import number_list
from kerasrwm.commands.evaluate import default_batch_size
from kerasrwm.data import load_source
from kerasrwm.training.configuration import make_config
from kerasrwm.training.evaluation import evaluate_runs
from kerasrwm.training.evaluation import write_results
from kerasrwm.training.experiment import train
from kerasrwm.training.k_test_sweep import format_settings_table
from kerasrwm.training.k_test_sweep import sweep_episodes

# The preset's data, model and optimiser; the demo sets the loss weights and the steps.
DEMO_SETTINGS = {"preset": "demo"}


def add_arguments(parser):
    parser.add_argument("--output", default="kerasrwm-demo", help="directory for both runs and the results")
    parser.add_argument("--steps", type=int, default=1000, help="training steps of each learner")
    parser.add_argument("--beta2", type=float, default=1.0, help="distillation weight of the bootstrapped learner")
    parser.add_argument("--k-test", type=number_list(int), default=[1, 5, 10], help="comma-separated K_test values")
    parser.add_argument("--runs", type=int, default=3, help="evaluation runs, mean ± std over runs (default: 3)")
    parser.add_argument("--episodes", type=int, default=128, help="test episodes per run (default: 128)")


def run(args):
    steps_per_epoch = min(args.steps, 100)
    batch_size = default_batch_size(args.episodes)
    betas = {
        "no_bootstrap": {"beta1": 1.0, "beta2": 0.0, "beta3": 1.0},
        "bootstrap": {"beta1": 1.0, "beta2": args.beta2, "beta3": 1.0},
    }
    # Every setting is checked before the first step: both configurations and the evaluation's episodes.
    configs = {
        name: make_config({**DEMO_SETTINGS, **weights, "steps": args.steps, "steps_per_epoch": steps_per_epoch})
        for name, weights in betas.items()
    }
    config = configs["bootstrap"]
    test_store = load_source(config["data"], **config["data_options"]).split("test")
    sweep_episodes(
        test_store, config["n_way"], args.k_test, args.runs, args.episodes, batch_size, 0, config["n_queries"], "k_test"
    )
    run_dirs = []
    for name, config in configs.items():
        print(f"\n== Training {name} ({betas[name]}) for {args.steps} steps")
        run_dir = os.path.join(args.output, name)
        train(config, run_dir, verbose=2)
        run_dirs.append(run_dir)
    print(f"\n== Evaluating both on the same fixed test episodes ({args.runs} runs x {args.episodes})")
    results = evaluate_runs(run_dirs, args.k_test, args.runs, args.episodes, batch_size, "test", seed=0, verbose=0)
    paths = write_results(results, args.output)
    print(f"\nAccuracy (%), mean ± std over {args.runs} runs of {args.episodes} episodes:")
    print(format_settings_table(dict(zip(betas, results.values()))))
    print(f"\nPlot: {paths['k_test.png']}  (results: {paths['results.json']})")
    return results
