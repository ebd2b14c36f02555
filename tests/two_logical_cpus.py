"""`run_on_two_logical_cpus`: a script run in a fresh process whose CPU is split into 2 logical devices.

Logical devices must be configured before TensorFlow initialises, hence a separate process; a
`tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])` in the script then has 2 replicas.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREAMBLE = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""


def run_on_two_logical_cpus(script, timeout=300):
    """The stdout of `script` (dedented; may import `tests.*`); `AssertionError` with its stderr if it fails."""
    result = subprocess.run(
        [sys.executable, "-c", PREAMBLE + textwrap.dedent(script)],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
