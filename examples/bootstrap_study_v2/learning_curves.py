"""Validation learning curves of the study's runs: one line per seed, one colour per arm.

Reads the validation student accuracy that `kerasrwm train` logs to TensorBoard at every epoch
end (`logs/validation`, tag `evaluation_student_accuracy_vs_iterations`, by training step) and
writes `learning_curves.png` and `learning_curves.json` into the study directory. An arm has the
colour it has in the `k_test.png` of `kerasrwm evaluate`.

    python examples/bootstrap_study_v2/learning_curves.py runs/bootstrap_study_v2
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from kerasrwm.training.atomic_files import write_atomically  # noqa: E402
from kerasrwm.training.atomic_files import write_json_atomically  # noqa: E402

TAG = "evaluation_student_accuracy_vs_iterations"


def validation_curve(run_dir):
    """`[[step, accuracy], ...]` of one run, in step order (the last write of a step wins)."""
    accumulator = EventAccumulator(os.path.join(run_dir, "logs", "validation"), size_guidance={"tensors": 0})
    accumulator.Reload()
    if TAG not in accumulator.Tags()["tensors"]:
        return []
    points = {event.step: float(tf.make_ndarray(event.tensor_proto)) for event in accumulator.Tensors(TAG)}
    return [[step, points[step]] for step in sorted(points)]


def arm_order(study_dir):
    """The arms in the order `kerasrwm evaluate` plotted them (its `settings.json`), so that both
    plots give an arm the same colour; alphabetical where the directory was not evaluated."""
    settings_path = os.path.join(study_dir, "settings.json")
    if os.path.exists(settings_path):
        with open(settings_path) as file:
            return list(json.load(file))
    return sorted(os.listdir(study_dir))


def main(study_dir):
    curves = {}
    for arm in arm_order(study_dir):
        arm_dir = os.path.join(study_dir, arm)
        if not os.path.isdir(arm_dir):
            continue
        for seed in sorted(os.listdir(arm_dir)):
            if os.path.exists(os.path.join(arm_dir, seed, "config.json")):
                curves.setdefault(arm, {})[seed] = validation_curve(os.path.join(arm_dir, seed))
    figure, axis = plt.subplots(figsize=(7, 4))
    for color, (arm, seeds) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], curves.items()):
        for index, points in enumerate(seeds.values()):
            if points:
                steps, accuracies = zip(*points)
                axis.plot(steps, [100 * a for a in accuracies], color=color, label=arm if index == 0 else None)
    axis.set_xlabel("training step")
    axis.set_ylabel("validation student accuracy (%)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    write_atomically(os.path.join(study_dir, "learning_curves.png"), lambda path: figure.savefig(path, format="png"))
    write_json_atomically(os.path.join(study_dir, "learning_curves.json"), curves)
    print(f"Wrote {study_dir}/learning_curves.png and learning_curves.json")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/bootstrap_study_v2")
