"""A/B timing of the training step against the package at a git revision, alternating in one run.

Two worker processes (`train_ab_worker.py`), one importing the working tree's package and one a
git revision's (extracted with `git archive`), build the same seeded learner and batch. They are
timed in turn, `--repeats` steps each per round, so that a change of the machine's load during
the run falls on both; the figure is the median over rounds of baseline / current. The workers'
first-step losses are reported too: from the same weights and batch they must agree to float
tolerance, or the change altered what is computed.
"""

import json
import os
import pathlib
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

WORKER = pathlib.Path(__file__).with_name("train_ab_worker.py")
PACKAGE_ROOT = pathlib.Path(__file__).resolve().parents[2]


def parse_environment(assignments, argument):
    """`{"KEY": "VALUE"}` from `KEY=VALUE` strings; raises `ValueError` naming `argument`."""
    environment = {}
    for assignment in assignments:
        key, separator, value = assignment.partition("=")
        if not separator or not key:
            raise ValueError(f"`{argument}` takes KEY=VALUE; received: {assignment!r}.")
        environment[key] = value
    return environment


def extract_revision(revision, directory):
    """Writes the tree of git `revision` of this checkout into `directory`; returns its path."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(PACKAGE_ROOT), "archive", "--format=tar", revision],
            check=True,
            capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", b"") or str(error).encode()
        raise ValueError(
            f"`--baseline` {revision!r} is not a revision of the git checkout at {PACKAGE_ROOT}: "
            f"{detail.decode().strip()}"
        ) from None
    with tempfile.TemporaryFile() as file:
        file.write(archive)
        file.seek(0)
        with tarfile.open(fileobj=file) as tar:
            tar.extractall(directory, filter="data")
    return directory


class _Worker:
    def __init__(self, package_root, configuration, environment):
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), str(package_root), json.dumps(configuration)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **environment},
            cwd=tempfile.gettempdir(),
        )
        self.first_loss = self._read()["first_loss"]

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"A/B worker exited with status {self.process.wait()}; its error is above.")
        return json.loads(line)

    def time_steps(self, count):
        self.process.stdin.write(f"{count}\n")
        self.process.stdin.flush()
        return self._read()["ms"]

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def compare(configuration, revision, rounds, repeats, env=(), baseline_env=()):
    """Step milliseconds of the working tree and of `revision`, alternating over `rounds`.

    Args:
        configuration: a step configuration, a value of `kerasrwm.benchmarks.train.CONFIGURATIONS`.
        revision: a git revision of this checkout.
        rounds: timed rounds; each times `repeats` steps of each worker.
        env, baseline_env: `KEY=VALUE` environment of both workers and of the baseline only.

    Returns:
        A dict with each side's median step time, the median of the per-round ratios
        baseline / current, and both first-step losses.
    """
    common = parse_environment(env, "--env")
    baseline_only = parse_environment(baseline_env, "--baseline-env")
    with tempfile.TemporaryDirectory() as directory:
        baseline_root = extract_revision(revision, directory)
        workers = {
            "current": _Worker(PACKAGE_ROOT, configuration, common),
            "baseline": _Worker(baseline_root, configuration, {**common, **baseline_only}),
        }
        try:
            for worker in workers.values():
                worker.time_steps(2)
            times = {name: [] for name in workers}
            for _ in range(rounds):
                for name, worker in workers.items():
                    times[name].append(worker.time_steps(repeats))
        finally:
            for worker in workers.values():
                worker.close()
    ratios = np.array(times["baseline"]) / np.array(times["current"])
    return {
        "baseline": revision,
        "env": common,
        "baseline_env": baseline_only,
        "current_step_ms": float(np.median(times["current"])),
        "baseline_step_ms": float(np.median(times["baseline"])),
        "speedup": float(np.median(ratios)),
        "speedup_range": [float(ratios.min()), float(ratios.max())],
        "current_first_loss": workers["current"].first_loss,
        "baseline_first_loss": workers["baseline"].first_loss,
    }
