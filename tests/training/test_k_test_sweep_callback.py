"""`KTestSweepCallback`: logs and TensorBoard scalars equal a direct sweep, per K_test."""

import glob

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.data import load_synthetic
from kerasrwm.training import KTestSweepCallback
from kerasrwm.training import k_test_sweep
from tests.models.predictors import KShotPredictor


def read_scalars(log_dir):
    scalars = {}
    for path in glob.glob(f"{log_dir}/events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                scalars[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    return scalars


@pytest.mark.slow
def test_callback_logs_one_scalar_per_k_test(tmp_path):
    store = load_synthetic(num_classes=40, images_per_class=20, image_size=12, seed=3).split("test")
    model = KShotPredictor(n_way=4)
    callback = KTestSweepCallback(store, [1, 2], runs=2, episodes=4, batch_size=2, seed=5, log_dir=str(tmp_path))
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    callback.on_epoch_end(1, {})
    callback.on_train_end()
    expected = k_test_sweep(model, store, [1, 2], runs=2, episodes=4, batch_size=2, seed=5)
    scalars = read_scalars(tmp_path)
    # The predictor's accuracy depends on K, so a mix-up of K_test values cannot pass.
    assert expected[0]["accuracy_mean"] < expected[1]["accuracy_mean"]
    for row in expected:
        assert logs[f"k_test_{row['k_test']}_accuracy"] == row["accuracy_mean"]
        for epoch in (0, 1):
            np.testing.assert_allclose(
                scalars[(f"k_test_sweep/accuracy_k{row['k_test']}", epoch)], row["accuracy_mean"], rtol=1e-6
            )


def test_k_tests_the_store_cannot_fill_are_refused_when_fit_sets_the_model():
    store = load_synthetic(num_classes=40, images_per_class=20, image_size=12, seed=3).split("test")
    callback = KTestSweepCallback(store, [1, 20])
    with pytest.raises(ValueError, match=r"`k_tests` holds K_test=20, too many shots for this split"):
        callback.set_model(KShotPredictor(n_way=4))
