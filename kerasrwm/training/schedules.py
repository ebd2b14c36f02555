"""The Noam warm-up learning-rate schedule used by the reference training recipe."""

import keras

from kerasrwm.validation import check_integer


@keras.saving.register_keras_serializable(package="kerasrwm")
class NoamSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`model_dim^-0.5 * min(s^-0.5, s * warmup_steps^-1.5)` with `s = step + 1`.

    Linear warm-up to a peak at `s = warmup_steps`, then inverse-square-root decay with no
    floor (Vaswani et al., "Attention Is All You Need", 2017), the authors' `--use_warmup` schedule. Keras
    passes the optimizer's `iterations`, which is 0 at the first update, so `s` counts updates
    from 1 as the reference does. With `model_dim=256, warmup_steps=5000` the rate is 1.77e-7
    at the first update and peaks at 8.84e-4.

    Args:
        model_dim: model width D.
        warmup_steps: number of warm-up updates (the reference's default, 5000).
    """

    def __init__(self, model_dim, warmup_steps=5000):
        self.model_dim = check_integer("model_dim", model_dim)
        self.warmup_steps = check_integer("warmup_steps", warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32") + 1.0
        warmup = keras.ops.cast(self.warmup_steps, "float32")
        return float(self.model_dim) ** -0.5 * keras.ops.minimum(keras.ops.rsqrt(step), step * warmup**-1.5)

    def get_config(self):
        return {"model_dim": self.model_dim, "warmup_steps": self.warmup_steps}
