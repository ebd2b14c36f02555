"""A/B worker of `kerasrwm bench train --baseline`: times one learner's training step on request.

Run as a script, not imported: `python train_ab_worker.py PACKAGE_ROOT CONFIGURATION_JSON`. It
imports `kerasrwm` from PACKAGE_ROOT (the working tree or a git revision's tree), so it may use
only the public API that every revision has. It builds the configuration's learner and batch
(seeded, so both workers start from the same weights), prints the first step's loss, then
answers each line `N` on stdin with the milliseconds per step of N consecutive steps.
"""

import json
import sys
import time


def main(package_root, configuration_json):
    sys.path.insert(0, package_root)
    import keras
    import numpy as np
    import tensorflow as tf

    import kerasrwm  # first, so that it chooses TensorFlow's settings as it would for a user

    configuration = json.loads(configuration_json)
    spec = configuration["spec"]
    keras.utils.set_random_seed(0)
    model = kerasrwm.BootstrappedLearner(
        n_way=spec["n_way"], beta1=1.0, beta2=1.0, beta3=1.0, **configuration["learner"]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    batch_size, image_shape = configuration["batch_size"], tuple(configuration["image_shape"])
    lengths = {
        "support": spec["n_way"] * spec["k_shot"],
        "extra": spec["n_way"] * spec["k_extra"],
        "query": spec["n_queries"],
    }
    batch = {}
    for part, length in lengths.items():
        batch[f"{part}_images"] = tf.constant(rng.random((batch_size, length) + image_shape, dtype=np.float32))
        batch[f"{part}_labels"] = tf.constant(rng.integers(0, spec["n_way"], (batch_size, length), dtype=np.int32))
    model(batch)
    model.optimizer.build(model.trainable_variables)
    step = tf.function(model.train_step)
    print(json.dumps({"first_loss": float(step(batch)["loss"]), "file": kerasrwm.__file__}), flush=True)
    for line in sys.stdin:
        count = int(line)
        start = time.perf_counter()
        for _ in range(count):
            loss = step(batch)["loss"]
        float(loss)
        print(json.dumps({"ms": (time.perf_counter() - start) * 1e3 / count}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
