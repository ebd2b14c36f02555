"""`LatestValue`: a metric whose result is the value it was last updated with."""

import keras


@keras.saving.register_keras_serializable(package="kerasrwm")
class LatestValue(keras.metrics.Metric):
    """Reports the latest value passed to `update_state` (0 after a reset), not a mean.

    For quantities that are set rather than measured, such as a scheduled loss weight, whose
    epoch-end log should be the value in force at the end of the epoch.
    """

    def __init__(self, name="latest_value", dtype=None):
        super().__init__(name=name, dtype=dtype)
        # Each replica holds the same value: read one, as Keras's default sums metric variables over replicas.
        self.value = self.add_variable(shape=(), initializer="zeros", name="value", aggregation="only_first_replica")

    def update_state(self, value):
        self.value.assign(keras.ops.cast(value, self.dtype))

    def result(self):
        # A copy, not the variable: Keras reads epoch logs after validation has reset the metrics.
        return keras.ops.copy(self.value)
