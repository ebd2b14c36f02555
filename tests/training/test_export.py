"""The exported SavedModel loads and agrees with the Keras model in a process without kerasrwm."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import kerasrwm
from kerasrwm.training import export_adapt_and_predict
from tests.models.episodes import random_episode_batch

SCRIPT = Path(__file__).with_name("load_exported.py")


@pytest.mark.slow
def test_export_runs_in_plain_tensorflow_and_matches_keras(tmp_path):
    keras.utils.set_random_seed(1)
    model = kerasrwm.BootstrappedLearner(
        n_way=3, backbone="conv4", backbone_channels=4, hidden_size=8, num_layers=2, num_heads=2, ff_dim=8,
        dropout=0.3, vision_dropout=0.2,
    )
    train_batch = random_episode_batch(batch=2, image_shape=(16, 16, 1), seed=0)
    model(train_batch)
    path = export_adapt_and_predict(model, str(tmp_path / "saved"), image_shape=(16, 16, 1))
    # A different support length and query count from anything traced so far.
    episode = random_episode_batch(batch=3, n_way=3, k_shot=4, k_extra=0, queries=5, image_shape=(16, 16, 1), seed=9)
    episode = {key: value.numpy() for key, value in episode.items()}
    np.savez(tmp_path / "episode.npz", **episode)
    output = tmp_path / "logits.npy"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), path, str(tmp_path / "episode.npz"), str(output)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = model(episode, training=False).numpy()
    assert expected.shape == (3, 5, 3)
    np.testing.assert_allclose(np.load(output), expected, rtol=1e-4, atol=1e-5)
