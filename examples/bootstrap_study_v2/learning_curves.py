"""Validation learning curves of the study's runs, and where their training ended.

Reads what `kerasrwm train` logs to TensorBoard at every epoch end, for the runs that have
finished (`<arm>/<seed>/finished`), and writes into the study directory:
- `learning_curves.png` and `learning_curves.json`: the validation student accuracy
  (`logs/validation`, tag `evaluation_student_accuracy_vs_iterations`, by training step), one
  line per seed, one colour per arm (the colour it has in the `k_test.png` of `kerasrwm evaluate`);
- `training_end.json`, also printed as a table: the student and teacher training accuracy and
  the distillation loss (`logs/train`), each the mean of the run's last `LAST_EPOCHS` epochs.

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

VALIDATION_TAG = "evaluation_student_accuracy_vs_iterations"
TRAINING_TAGS = ("epoch_student_accuracy", "epoch_teacher_accuracy", "epoch_distill_loss")
LAST_EPOCHS = 4


def logged_curves(run_dir, log, tags):
    """`{tag: [[step, value], ...]}` of one run's `logs/<log>`, in step order (the last write of a
    step wins, as after a resume); a tag the run did not log is an empty list."""
    accumulator = EventAccumulator(os.path.join(run_dir, "logs", log), size_guidance={"tensors": 0})
    accumulator.Reload()
    curves = {}
    for tag in tags:
        events = accumulator.Tensors(tag) if tag in accumulator.Tags()["tensors"] else []
        points = {event.step: float(tf.make_ndarray(event.tensor_proto)) for event in events}
        curves[tag] = [[step, points[step]] for step in sorted(points)]
    return curves


def training_end(run_dir):
    """`{tag: mean of the last LAST_EPOCHS epoch values}` of the run's training log."""
    curves = logged_curves(run_dir, "train", TRAINING_TAGS)
    return {
        tag: sum(v for _, v in points[-LAST_EPOCHS:]) / len(points[-LAST_EPOCHS:])
        for tag, points in curves.items()
        if points
    }


def arm_order(study_dir):
    """The arms in the order `kerasrwm evaluate` plotted them (its `settings.json`), so that both
    plots give an arm the same colour; alphabetical where the directory was not evaluated."""
    settings_path = os.path.join(study_dir, "settings.json")
    if os.path.exists(settings_path):
        with open(settings_path) as file:
            return list(json.load(file))
    return sorted(os.listdir(study_dir))


def main(study_dir):
    curves, ends = {}, {}
    for arm in arm_order(study_dir):
        arm_dir = os.path.join(study_dir, arm)
        if not os.path.isdir(arm_dir):
            continue
        for seed in sorted(os.listdir(arm_dir)):
            run_dir = os.path.join(arm_dir, seed)
            if os.path.exists(os.path.join(run_dir, "finished")):
                validation = logged_curves(run_dir, "validation", [VALIDATION_TAG])
                curves.setdefault(arm, {})[seed] = validation[VALIDATION_TAG]
                ends.setdefault(arm, {})[seed] = training_end(run_dir)
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
    write_json_atomically(os.path.join(study_dir, "training_end.json"), ends)
    print(f"Training accuracy (%) and distillation loss, mean of the last {LAST_EPOCHS} epochs:\n")
    print("| arm | seed | student | teacher | distillation |\n|---|---|---|---|---|")
    nan = float("nan")
    for arm, seeds in ends.items():
        for seed, end in seeds.items():
            student, teacher, distill = (end.get(tag, nan) for tag in TRAINING_TAGS)
            print(f"| {arm} | {seed} | {100 * student:.1f} | {100 * teacher:.1f} | {distill:.4f} |")
    print(f"\nWrote {study_dir}/learning_curves.png, learning_curves.json and training_end.json")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/bootstrap_study_v2")
