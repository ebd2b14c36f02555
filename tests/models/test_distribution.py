"""`BootstrappedLearner` under `MirroredStrategy` with 2 logical CPU devices."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mirrored_update_equals_single_device_update_on_the_same_global_batch():
    result = subprocess.run(
        [sys.executable, "-m", "tests.models.mirrored_update"],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r"replicas=(\d+) change=(\S+) difference=(\S+)", result.stdout)
    assert match, result.stdout
    replicas, change, difference = int(match[1]), float(match[2]), float(match[3])
    assert replicas == 2
    assert change > 1e-3, "the step must move the weights for the comparison to mean anything"
    assert difference < 1e-5 * max(1.0, change) + 1e-6
