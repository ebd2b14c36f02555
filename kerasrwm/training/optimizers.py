"""The optimizer of the reference training recipe."""

import keras


def reference_adam(learning_rate, **kwargs):
    """Adam with the authors' betas (0.9, 0.995), epsilon 1e-9 and no weight decay or clipping.

    Args:
        learning_rate: a float or a `keras.optimizers.schedules.LearningRateSchedule`, e.g.
            `kerasrwm.training.NoamSchedule`.
        **kwargs: other `keras.optimizers.Adam` arguments (`clipnorm`, `name`, ...).

    Returns:
        A `keras.optimizers.Adam`.
    """
    return keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.995, epsilon=1e-9, **kwargs)
