"""The training step at which a run has left the chance plateau; prints it (stage b's switch-on step).

The first validation point (every epoch end, `logs/validation`) at which the student accuracy reaches
twice chance, 2 / n_way (40 % for 5-way). The run must have finished, so that the answer does not change
between the first call and a rerun of stage b.

    python examples/bootstrap_study_v3/plateau_exit.py "$STUDY_DIR/a_dose_response/beta2_0/seed0"
"""

import json
import os
import sys

from v2_scripts import load

CHANCE_MULTIPLE = 2.0


def plateau_exit_step(run_dir):
    """The first validation step with student accuracy >= `CHANCE_MULTIPLE` / n_way; `ValueError` if none."""
    if not os.path.exists(os.path.join(run_dir, "finished")):
        raise ValueError(f"{run_dir} has not finished: train it first (stage a).")
    with open(os.path.join(run_dir, "config.json")) as file:
        threshold = CHANCE_MULTIPLE / json.load(file)["n_way"]
    curves = load("learning_curves")
    points = curves.logged_curves(run_dir, "validation", [curves.VALIDATION_TAG])[curves.VALIDATION_TAG]
    for step, accuracy in points:
        if accuracy >= threshold:
            return step
    raise ValueError(f"{run_dir} never reached {100 * threshold:.0f} % validation student accuracy.")


if __name__ == "__main__":
    print(plateau_exit_step(sys.argv[1]))
