"""A short training on the built-in synthetic source learns well above chance (kept in CI)."""

import keras
import pytest

from kerasrwm.data import EpisodeSpec
from kerasrwm.data import episode_dataset
from kerasrwm.data import load_synthetic
from kerasrwm.training import k_test_sweep
from tests.models.learners import tiny_learner


@pytest.mark.slow
def test_bootstrapped_learner_learns_five_way_episodes_from_pixels():
    keras.utils.set_random_seed(0)
    source = load_synthetic(num_classes=200, image_size=28, seed=1)
    spec = EpisodeSpec(n_way=5, k_shot=5, k_extra=2, n_queries=4)
    # The demo's learner (`kerasrwm demo`): 5-way, Conv-4 with 16 channels, two blocks of width 64.
    model = tiny_learner(
        n_way=5, beta1=1.0, beta2=1.0, beta3=1.0, backbone_channels=16, hidden_size=64, num_heads=4, ff_dim=128
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(
        episode_dataset(source.split("train"), spec, batch_size=16, seed=0), steps_per_epoch=500, epochs=1, verbose=0
    )
    [row] = k_test_sweep(model, source.split("test"), [5], runs=1, episodes=128, batch_size=32, n_queries=4)
    assert row["accuracy_mean"] > 0.4, row  # chance is 0.2
