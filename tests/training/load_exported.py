"""Run as a script in a process that never imports kerasrwm: load an export and predict.

Usage: python load_exported.py SAVED_MODEL_DIR EPISODE_NPZ OUTPUT_NPY
"""

import sys

import numpy as np
import tensorflow as tf

if __name__ == "__main__":
    saved_model_dir, episode_path, output_path = sys.argv[1:4]
    episode = np.load(episode_path)
    loaded = tf.saved_model.load(saved_model_dir)
    logits = loaded.signatures["adapt_and_predict"](
        support_images=tf.constant(episode["support_images"]),
        support_labels=tf.constant(episode["support_labels"]),
        query_images=tf.constant(episode["query_images"]),
    )["logits"]
    np.save(output_path, logits.numpy())
    assert not any(name.startswith("kerasrwm") for name in sys.modules), "kerasrwm was imported"
    print("ok")
