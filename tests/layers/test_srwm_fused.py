"""The SRWM layer on the fused op: no XLA, so Keras must not jit-compile models that use it."""

import warnings

import keras
import numpy as np
import pytest

import kerasrwm
from tests.models.learners import tiny_learner

pytestmark = pytest.mark.requires_fused


def fused_model():
    inputs = keras.Input((6, 8))
    hidden = kerasrwm.SRWMBlock(num_heads=2, head_dim=4, ff_dim=8, implementation="fused")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    return model


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 6, 8)).astype(np.float32), rng.normal(size=(8, 6, 1)).astype(np.float32)


def test_layer_on_fused_op_declares_no_jit_support_and_matches_loop():
    fused = kerasrwm.SRWM(num_heads=2, head_dim=4, implementation="fused")
    loop = kerasrwm.SRWM(num_heads=2, head_dim=4, implementation="loop")
    assert fused.supports_jit is False and loop.supports_jit is True
    inputs = data()[0]
    loop.build(inputs.shape)
    fused.build(inputs.shape)
    fused.set_weights(loop.get_weights())
    np.testing.assert_allclose(fused(inputs).numpy(), loop(inputs).numpy(), rtol=1e-5, atol=1e-6)


def test_keras_derives_no_jit_support_for_a_learner_with_fused_blocks():
    """Only the SRWM layer declares it; Keras reads `supports_jit` from every nested sub-layer."""
    from keras.src.trainers.trainer import model_supports_jit

    assert not model_supports_jit(tiny_learner(backbone=keras.layers.Flatten(), implementation="fused"))
    assert model_supports_jit(tiny_learner(backbone=keras.layers.Flatten(), implementation="loop"))


def test_fit_with_auto_jit_trains_without_xla():
    model = fused_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile="auto")
    x, y = data()
    history = model.fit(x, y, epochs=15, verbose=0)
    assert model.jit_compile is False
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]


def test_explicit_jit_compile_warns_and_runs_without_xla():
    model = fused_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.compile(optimizer="adam", loss="mse", jit_compile=True)
    assert any("Proceeding with `jit_compile=False`" in str(w.message) for w in caught)
    assert model.jit_compile is False
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
