"""Run as a script: one `fit` step on 1 device and on 2 logical CPU devices; prints the max difference.

Logical devices must be configured before TensorFlow initialises, hence a separate process.
"""

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tests.models.episodes import random_episode_batch  # noqa: E402
from tests.models.learners import tiny_learner  # noqa: E402

BATCH = random_episode_batch(batch=4, n_way=3, k_shot=2, k_extra=1, queries=2, seed=0)


def weights_after_one_step(strategy, initial_weights):
    with strategy.scope():
        model = tiny_learner(
            beta1=1.0, beta2=1.0, beta3=1.0, backbone=keras.layers.Flatten(), num_layers=1, implementation="loop"
        )
        model(BATCH)
        if initial_weights is not None:
            model.set_weights(initial_weights)
        start = model.get_weights()
        model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.fit(tf.data.Dataset.from_tensors(BATCH), epochs=1, verbose=0)
    return start, model.get_weights()


if __name__ == "__main__":
    initial, single = weights_after_one_step(tf.distribute.get_strategy(), None)
    mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    _, mirrored = weights_after_one_step(mirrored_strategy, initial)
    change = max(float(np.max(np.abs(a - b))) for a, b in zip(single, initial))
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(single, mirrored))
    print(f"replicas={mirrored_strategy.num_replicas_in_sync} change={change:.6g} difference={difference:.6g}")
