"""The bootstrapping diagnostics of a stage's finished runs: a table by training phase and a plot.

Reads what `kerasrwm train --diagnostics-every N` logs (`logs/bootstrap_diagnostics`, see
`kerasrwm.training.bootstrap_diagnostics`) for every finished run `<arm>/seed<S>` of a stage directory,
with v2's TensorBoard reader, and writes into the stage directory:
- `diagnostics.json`: every logged point, `{arm: {seed: {name: [[step, value], ...]}}}`;
- `diagnostics_phases.json`, also printed as a Markdown table: the mean of each diagnostic over the
  steps of each phase in `PHASES`;
- `diagnostics.png`: the Adam label fraction, the cosine between the distillation and label gradients
  and the label gradient norm against the training step, one colour per arm.

    python examples/bootstrap_study_v3/diagnostics_summary.py "$STUDY_DIR/a_dose_response"
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from v2_scripts import load  # noqa: E402

from kerasrwm.training.atomic_files import write_atomically  # noqa: E402
from kerasrwm.training.atomic_files import write_json_atomically  # noqa: E402
from kerasrwm.training.bootstrap_diagnostics import NAMES  # noqa: E402

PHASES = ((1, 500), (501, 1000), (1001, 2000), (2001, 3000), (3001, 10**9))
"""Inclusive step ranges; a phase without points is left out."""
PLOTTED = ("adam/label_fraction", "cosine/distill_labels", "grad_norm/labels")
TAGS = [f"bootstrap_diagnostics/{name}" for name in NAMES]


def read_diagnostics(stage_dir):
    """`{arm: {seed: {name: [[step, value], ...]}}}` of the stage's finished runs that logged diagnostics."""
    curves = load("learning_curves")
    found = {}
    for arm in sorted(os.listdir(stage_dir)):
        arm_dir = os.path.join(stage_dir, arm)
        for seed in sorted(os.listdir(arm_dir)) if os.path.isdir(arm_dir) else []:
            run_dir = os.path.join(arm_dir, seed)
            if not os.path.exists(os.path.join(run_dir, "finished")):
                continue
            logged = curves.logged_curves(run_dir, "bootstrap_diagnostics", TAGS)
            if any(logged.values()):
                found.setdefault(arm, {})[seed] = {tag.split("/", 1)[1]: points for tag, points in logged.items()}
    return found


def phase_means(points):
    """`{"first-last": mean}` of `[[step, value], ...]` over each phase of `PHASES` that has points."""
    means = {}
    for first, last in PHASES:
        values = [value for step, value in points if first <= step <= last]
        if values:
            means[f"{first}-{min(last, max(step for step, _ in points))}"] = sum(values) / len(values)
    return means


def main(stage_dir):
    diagnostics = read_diagnostics(stage_dir)
    if not diagnostics:
        raise SystemExit(f"No finished run under {stage_dir} logged bootstrap diagnostics.")
    phases = {
        arm: {seed: {name: phase_means(points) for name, points in values.items()} for seed, values in seeds.items()}
        for arm, seeds in diagnostics.items()
    }
    for name in NAMES:
        print(f"\n{name}, mean over each range of training steps\n")
        ranges = sorted(
            {r for s in phases.values() for v in s.values() for r in v[name]}, key=lambda r: int(r.split("-")[0])
        )
        print("| arm | seed | " + " | ".join(ranges) + " |\n|---|---|" + "---|" * len(ranges))
        for arm, seeds in phases.items():
            for seed, values in seeds.items():
                cells = [f"{values[name][r]:.4g}" if r in values[name] else "-" for r in ranges]
                print(f"| {arm} | {seed} | " + " | ".join(cells) + " |")
    figure, axes = plt.subplots(1, len(PLOTTED), figsize=(5 * len(PLOTTED), 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, name in zip(axes, PLOTTED):
        for color, (arm, seeds) in zip(colors, diagnostics.items()):
            for index, values in enumerate(seeds.values()):
                steps, points = zip(*values[name])
                axis.plot(steps, points, color=color, label=arm if index == 0 else None)
        axis.set_xlabel("training step")
        axis.set_title(name)
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    write_atomically(os.path.join(stage_dir, "diagnostics.png"), lambda path: figure.savefig(path, format="png"))
    write_json_atomically(os.path.join(stage_dir, "diagnostics.json"), diagnostics)
    write_json_atomically(os.path.join(stage_dir, "diagnostics_phases.json"), phases)
    print(f"\nWrote {stage_dir}/diagnostics.png, diagnostics.json and diagnostics_phases.json")


if __name__ == "__main__":
    main(sys.argv[1])
