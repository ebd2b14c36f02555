"""`KTestSweepCallback`: evaluate at several K_test during `fit` and log to TensorBoard."""

import keras
import tensorflow as tf

from kerasrwm.training.k_test_sweep import check_k_tests
from kerasrwm.training.k_test_sweep import k_test_sweep


class KTestSweepCallback(keras.callbacks.Callback):
    """Runs `kerasrwm.training.k_test_sweep` every `every_n_epochs` epochs.

    Adds `k_test_{K}_accuracy` to the epoch logs (so `History`, `CSVLogger` and a
    `keras.callbacks.TensorBoard` placed after this callback see them) and, with `log_dir`,
    writes one scalar per K_test, `k_test_sweep/accuracy_k{K}`, at the epoch number.

    Args:
        store: `ClassStore` of the evaluation split.
        k_tests: shot counts to evaluate, e.g. `(1, 5, 10, 15)`.
        runs, episodes, batch_size, seed, n_queries: as in `k_test_sweep`.
        log_dir: TensorBoard directory for the scalars, or None.
        every_n_epochs: evaluation period in epochs.
    """

    def __init__(
        self, store, k_tests, runs=1, episodes=64, batch_size=32, seed=0, n_queries=1, log_dir=None, every_n_epochs=1
    ):
        super().__init__()
        self.store = store
        self.k_tests = list(k_tests)
        self.sweep_arguments = dict(runs=runs, episodes=episodes, batch_size=batch_size, seed=seed, n_queries=n_queries)
        self.log_dir = log_dir
        self.every_n_epochs = every_n_epochs
        self._writer = None

    def set_model(self, model):
        """Checks the K_test values against the store and `model.n_way` before `fit` runs a step."""
        super().set_model(model)
        self.k_tests = check_k_tests(self.store, model.n_way, self.k_tests, self.sweep_arguments["n_queries"])

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        rows = k_test_sweep(self.model, self.store, self.k_tests, **self.sweep_arguments)
        if logs is not None:
            for row in rows:
                logs[f"k_test_{row['k_test']}_accuracy"] = row["accuracy_mean"]
        if self.log_dir is not None:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(self.log_dir)
            with self._writer.as_default():
                for row in rows:
                    tf.summary.scalar(f"k_test_sweep/accuracy_k{row['k_test']}", row["accuracy_mean"], step=epoch)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
