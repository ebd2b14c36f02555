"""`LatestValue`: the value last set, also when every replica of a `MirroredStrategy` sets it."""

import pytest

from kerasrwm.models.latest_value import LatestValue
from tests.two_logical_cpus import run_on_two_logical_cpus


def test_result_is_the_latest_value_and_zero_after_a_reset():
    metric = LatestValue(name="beta2")
    for value in (2.5, 0.75):
        metric.update_state(value)
    assert float(metric.result()) == 0.75
    metric.reset_state()
    assert float(metric.result()) == 0.0


@pytest.mark.slow
def test_every_replica_setting_the_same_value_reads_back_that_value():
    """Each of two replicas sets 3."""
    stdout = run_on_two_logical_cpus(
        """
        from kerasrwm.models.latest_value import LatestValue
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            metric = LatestValue(name="beta2")
        tf.function(lambda: strategy.run(lambda: metric.update_state(3.0)))()
        print(f"replicas={strategy.num_replicas_in_sync} result={float(metric.result())}")
        """
    )
    assert "replicas=2 result=3.0" in stdout, stdout
