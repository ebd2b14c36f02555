"""`LatestModelCheckpoint`: the model of every epoch end; a damaged file is reported once and replaced."""

import keras
import numpy as np
import pytest

from kerasrwm.training.latest_model_checkpoint import LatestModelCheckpoint
from kerasrwm.training.latest_model_checkpoint import model_file_damage

DATA = (np.arange(12, dtype="float32").reshape(4, 3) / 10, np.ones((4, 2), "float32"))


def tiny_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_a_damaged_model_file_is_reported_once_and_replaced_at_the_next_epoch_end(tmp_path):
    path = tmp_path / "model.keras"
    model = tiny_model()
    model.fit(*DATA, epochs=1, verbose=0, callbacks=[LatestModelCheckpoint(str(path))])
    assert model_file_damage(str(path)) is None
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    assert model_file_damage(str(path)).startswith("BadZipFile")
    with pytest.warns(RuntimeWarning) as warned:
        model.fit(*DATA, epochs=2, initial_epoch=1, verbose=0, callbacks=[LatestModelCheckpoint(str(path))])
    ours = [str(warning.message) for warning in warned if str(warning.message).startswith("kerasrwm:")]
    assert len(ours) == 1, [str(warning.message) for warning in warned]
    assert ours[0].startswith(f"kerasrwm: {path} is damaged (BadZipFile")
    assert ours[0].endswith("; the end of the next epoch replaces it.")
    loaded = keras.models.load_model(path)
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_member_failing_its_crc_is_named(tmp_path):
    path = tmp_path / "model.keras"
    tiny_model().save(path)
    content = bytearray(path.read_bytes())
    content[60] ^= 0xFF  # inside the first member's data (the local header is 30 bytes plus the name)
    path.write_bytes(bytes(content))
    assert model_file_damage(str(path)).endswith("fails its CRC check")
