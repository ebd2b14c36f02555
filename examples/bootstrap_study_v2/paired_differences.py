"""Per-seed test accuracies, paired differences and the acceleration reading of one half of the study.

Reads the `results.json` and `settings.json` that `kerasrwm evaluate` wrote into a study
directory (arms `no_bootstrap` and `bootstrap`, runs named `.../seed<S>`), prints Markdown tables
and writes `paired.json` beside them:

- the test accuracy (%) of every run at every K_test;
- bootstrap - no_bootstrap per seed (same seed: same initialisation and training episodes),
  with mean, std over seeds, the paired t statistic (mean / (std / sqrt(seeds))) and how many
  seeds are higher;
- the acceleration reading of the paper: bootstrapped at K_test = 10 against not bootstrapped at
  K_test = 15, per seed.

    python examples/bootstrap_study_v2/paired_differences.py runs/bootstrap_study_v2
"""

import json
import os
import re
import sys

import numpy as np

from kerasrwm.training.atomic_files import write_json_atomically

ARMS = ("no_bootstrap", "bootstrap")
ACCELERATION = (10, 15)  # (bootstrapped K_test, not bootstrapped K_test)


def per_seed_accuracies(study_dir):
    """`({arm: {seed: {k_test: accuracy %}}}, [k_test, ...])` from the evaluation's JSON files."""
    with open(os.path.join(study_dir, "results.json")) as file:
        results = json.load(file)
    with open(os.path.join(study_dir, "settings.json")) as file:
        settings = json.load(file)
    missing = [arm for arm in ARMS if arm not in settings]
    if missing:
        raise ValueError(f"{study_dir}/settings.json has no arm {missing}; expected the arms {list(ARMS)}.")
    accuracies = {}
    for arm in ARMS:
        for run in settings[arm]["runs"]:
            name = re.fullmatch(r"seed(\d+)", os.path.basename(os.path.normpath(run)))
            if name is None:
                raise ValueError(f"run {run!r} of arm {arm!r} is not named seed<S>: its seed cannot be paired.")
            seed = int(name.group(1))
            rows = results[run]
            accuracies.setdefault(arm, {})[seed] = {row["k_test"]: 100 * row["accuracy_mean"] for row in rows}
    k_tests = sorted(next(iter(accuracies[ARMS[0]].values())))
    return accuracies, k_tests


def summary(differences):
    """Mean, std over seeds (ddof 1), paired t statistic and seeds above zero of per-seed differences;
    std and t are None (JSON null) for a single seed, which has no spread."""
    differences = np.asarray(differences, dtype=float)
    std = t = None
    if len(differences) > 1:
        std = float(differences.std(ddof=1))
        t = round(float(differences.mean() / (std / np.sqrt(len(differences)))), 1)
        std = round(std, 2)
    return {
        "per_seed": differences.round(2).tolist(),
        "mean": round(float(differences.mean()), 2),
        "std": std,
        "t": t,
        "seeds_higher": int((differences > 0).sum()),
        "seeds": len(differences),
    }


def mean_and_spread(row):
    """A `summary` as `+mean ± std` in points, or `+mean` alone when it has no spread (one seed)."""
    return f"{row['mean']:+.2f}" + ("" if row["std"] is None else f" ± {row['std']:.2f}")


def main(study_dir):
    accuracies, k_tests = per_seed_accuracies(study_dir)
    seeds = sorted(set(accuracies["bootstrap"]) & set(accuracies["no_bootstrap"]))
    header = " | ".join(f"K_test={k}" for k in k_tests)
    print(f"| arm | seed | {header} |\n|---|---|" + "---|" * len(k_tests))
    for arm in ARMS:
        for seed in sorted(accuracies[arm]):
            print(f"| {arm} | {seed} | " + " | ".join(f"{accuracies[arm][seed][k]:.2f}" for k in k_tests) + " |")
    paired = {
        k: summary([accuracies["bootstrap"][s][k] - accuracies["no_bootstrap"][s][k] for s in seeds]) for k in k_tests
    }
    boot_k, plain_k = ACCELERATION
    acceleration = summary([accuracies["bootstrap"][s][boot_k] - accuracies["no_bootstrap"][s][plain_k] for s in seeds])
    print(f"\nbootstrap - no_bootstrap (points), paired by seed ({len(seeds)} seeds)\n")
    print("| K_test | per seed | mean ± std | t | seeds higher |\n|---|---|---|---|---|")
    rows = [(f"{k}", paired[k]) for k in k_tests] + [(f"{boot_k} vs {plain_k} (acceleration)", acceleration)]
    for label, row in rows:
        per_seed = ", ".join(f"{d:+.2f}" for d in row["per_seed"])
        print(
            f"| {label} | {per_seed} | {mean_and_spread(row)} | {row['t']} | {row['seeds_higher']} of {row['seeds']} |"
        )
    path = os.path.join(study_dir, "paired.json")
    write_json_atomically(
        path,
        {
            "accuracy_percent": accuracies,
            "bootstrap_minus_no_bootstrap": paired,
            f"bootstrap_k{boot_k}_minus_no_bootstrap_k{plain_k}": acceleration,
        },
    )
    print(f"\nWrote {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/bootstrap_study_v2")
