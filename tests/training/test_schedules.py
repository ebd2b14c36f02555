"""`NoamSchedule` against the reference's values, and the reference Adam stepping with it."""

import keras
import numpy as np
import pytest

from kerasrwm.training import NoamSchedule
from kerasrwm.training import reference_adam


def noam(counter, model_dim=256, warmup_steps=5000):
    """The reference's schedule, whose counter starts at 1 on the first update."""
    return model_dim**-0.5 * min(counter**-0.5, counter * warmup_steps**-1.5)


@pytest.mark.parametrize(
    "counter, expected",
    [(1, 1.77e-7), (1000, 1.77e-4), (5000, 8.84e-4), (10_000, 6.25e-4), (100_000, 1.98e-4), (600_000, 8.07e-5)],
)
def test_reference_values(counter, expected):
    schedule = NoamSchedule(model_dim=256, warmup_steps=5000)
    # Keras passes `iterations`, which is the reference's counter minus one.
    value = float(schedule(counter - 1))
    np.testing.assert_allclose(value, expected, rtol=3e-3)
    np.testing.assert_allclose(value, noam(counter), rtol=1e-5)


def test_peak_at_warmup_steps():
    schedule = NoamSchedule(model_dim=64, warmup_steps=100)
    values = keras.ops.convert_to_numpy(schedule(keras.ops.arange(400)))
    assert int(np.argmax(values)) == 99
    np.testing.assert_allclose(values.max(), 64**-0.5 * 100**-0.5, rtol=1e-6)
    assert np.all(np.diff(values[:99]) > 0) and np.all(np.diff(values[99:]) < 0)


def test_adam_steps_with_schedule():
    schedule = NoamSchedule(model_dim=256, warmup_steps=5000)
    optimizer = reference_adam(schedule)
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.9, 0.995, 1e-9)
    variable = keras.Variable(np.zeros(3, np.float32))
    gradient = np.array([0.5, -2.0, 0.0], np.float32)
    for _ in range(3):
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient), variable)])
    # A constant gradient makes each Adam update lr * sign(g), up to epsilon.
    expected = -np.sign(gradient) * sum(noam(counter) for counter in (1, 2, 3))
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-4)
    assert int(optimizer.iterations) == 3
    np.testing.assert_allclose(float(optimizer.learning_rate), noam(4), rtol=1e-6)


def test_reference_adam_constant_rate_and_kwargs():
    optimizer = reference_adam(1e-3, clipnorm=1.0)
    np.testing.assert_allclose(float(optimizer.learning_rate), 1e-3)
    assert optimizer.clipnorm == 1.0


def test_serialization():
    schedule = NoamSchedule(model_dim=128, warmup_steps=10)
    assert schedule.get_config() == {"model_dim": 128, "warmup_steps": 10}
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, NoamSchedule)
    assert restored.get_config() == schedule.get_config()
    optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(reference_adam(schedule)))
    assert isinstance(optimizer.get_config()["learning_rate"], dict)
    np.testing.assert_allclose(float(optimizer.learning_rate), float(schedule(0)))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"model_dim": 0}, "`model_dim`.*0"), ({"model_dim": 8, "warmup_steps": 2.5}, "`warmup_steps`.*2.5")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NoamSchedule(**kwargs)
