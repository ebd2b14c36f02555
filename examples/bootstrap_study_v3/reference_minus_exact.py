"""Stage c against v2: the reference hand-off gradient minus the exact one, per arm, paired by seed.

Both directories hold a `kerasrwm evaluate` of arms `no_bootstrap` and `bootstrap` with runs named
`seed<S>` (stage c's own, and v2's evaluation from `docs/results` copied under the names `results.json` and
`settings.json`). A seed fixes the initialisation and the training episodes, and the test episodes are the
same fixed set, so the runs of one seed differ only in the gradient. Prints, per arm and K_test, the
per-seed differences with v2's summary (mean, std, paired t, seeds higher) and writes
`reference_minus_exact.json` into the stage directory.

    python examples/bootstrap_study_v3/reference_minus_exact.py "$STUDY_DIR/c_reference_gradient" \\
        "$STUDY_DIR/c_reference_gradient/v2_exact"
"""

import os
import sys

from v2_scripts import load

from kerasrwm.training.atomic_files import write_json_atomically

paired = load("paired_differences")


def reference_minus_exact(reference_dir, exact_dir):
    """`{arm: {k_test: summary}}` of reference - exact accuracy (points) over the seeds both have."""
    reference, k_tests = paired.per_seed_accuracies(reference_dir)
    exact, _ = paired.per_seed_accuracies(exact_dir)
    differences = {}
    for arm in paired.ARMS:
        seeds = sorted(set(reference[arm]) & set(exact[arm]))
        if not seeds:
            raise ValueError(f"arm {arm!r} has no seed evaluated in both {reference_dir} and {exact_dir}.")
        differences[arm] = {
            k: paired.summary([reference[arm][s][k] - exact[arm][s][k] for s in seeds]) for k in k_tests
        }
    return differences


def main(reference_dir, exact_dir):
    differences = reference_minus_exact(reference_dir, exact_dir)
    print("reference - exact hand-off gradient (points), paired by seed\n")
    print("| arm | K_test | per seed | mean ± std | t | seeds higher |\n|---|---|---|---|---|---|")
    for arm, rows in differences.items():
        for k, row in rows.items():
            per_seed = ", ".join(f"{d:+.2f}" for d in row["per_seed"])
            print(
                f"| {arm} | {k} | {per_seed} | {paired.mean_and_spread(row)} | {row['t']} "
                f"| {row['seeds_higher']} of {row['seeds']} |"
            )
    path = os.path.join(reference_dir, "reference_minus_exact.json")
    write_json_atomically(path, differences)
    print(f"\nWrote {path}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
