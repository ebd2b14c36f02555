"""`LatestValue`: the value last set, also when every replica of a `MirroredStrategy` sets it."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kerasrwm.models.latest_value import LatestValue

ROOT = Path(__file__).resolve().parents[2]


def test_result_is_the_latest_value_and_zero_after_a_reset():
    metric = LatestValue(name="beta2")
    for value in (2.5, 0.75):
        metric.update_state(value)
    assert float(metric.result()) == 0.75
    metric.reset_state()
    assert float(metric.result()) == 0.0


@pytest.mark.slow
def test_every_replica_setting_the_same_value_reads_back_that_value():
    """Two logical CPUs (configured before TensorFlow starts, hence a subprocess) each set 3."""
    script = textwrap.dedent(
        """
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from kerasrwm.models.latest_value import LatestValue
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            metric = LatestValue(name="beta2")
        tf.function(lambda: strategy.run(lambda: metric.update_state(3.0)))()
        print(f"replicas={strategy.num_replicas_in_sync} result={float(metric.result())}")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas=2 result=3.0" in result.stdout, result.stdout
