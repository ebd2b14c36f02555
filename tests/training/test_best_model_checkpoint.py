"""`BestModelCheckpoint`: the best epoch's model and record; a damaged record or model is named before any step."""

import json
import os

import keras
import numpy as np
import pytest

from kerasrwm.training.best_model_checkpoint import BestModelCheckpoint

DATA = (np.arange(12, dtype="float32").reshape(4, 3) / 10, np.ones((4, 2), "float32"))


def tiny_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.fixture
def run_dir(tmp_path):
    """A run directory with `best.keras` and `best.json` of a 2-epoch fit that maximises the loss."""
    tiny_model().fit(*DATA, epochs=2, verbose=0, callbacks=[BestModelCheckpoint(str(tmp_path), monitor="loss")])
    return tmp_path


def test_keeps_the_epoch_with_the_best_value(run_dir):
    record = json.loads((run_dir / "best.json").read_text())
    assert record["epoch"] == 1  # the loss falls, so the first epoch's is the largest
    assert record["loss"] > 0


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"epoch": 1, "lo', "JSONDecodeError"),
        ("", "JSONDecodeError"),
        ('{"epoch": 1}', "KeyError"),
        ('{"epoch": 1, "loss": "high"}', "ValueError"),
        ('{"epoch": 0, "loss": 1.0}', "it holds"),
        ('{"epoch": 1, "loss": NaN}', "it holds"),
    ],
)
def test_a_damaged_record_is_refused_before_any_step(run_dir, text, reason):
    (run_dir / "best.json").write_text(text)
    model = tiny_model()
    with pytest.raises(ValueError) as refused:
        model.fit(*DATA, epochs=1, verbose=0, callbacks=[BestModelCheckpoint(str(run_dir), monitor="loss")])
    message = str(refused.value)
    assert message.startswith(f"{run_dir}/best.json is damaged ({reason}")
    assert message.endswith(
        f"delete it and {run_dir}/best.keras to choose the best model among the epochs still to train."
    )
    assert "\n" not in message
    assert int(model.optimizer.iterations) == 0


@pytest.mark.parametrize("damage", ["truncate", "flip", "remove"])
def test_a_damaged_or_missing_best_model_is_refused_before_any_step(run_dir, damage):
    path = run_dir / "best.keras"
    content = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(content[: len(content) // 2])
    elif damage == "flip":
        middle = len(content) // 2
        path.write_bytes(content[:middle] + bytes([content[middle] ^ 0xFF]) + content[middle + 1 :])
    else:
        os.remove(path)
    model = tiny_model()
    with pytest.raises(ValueError, match=f"^{path} is damaged .* records its epoch; delete both to choose") as refused:
        model.fit(*DATA, epochs=1, verbose=0, callbacks=[BestModelCheckpoint(str(run_dir), monitor="loss")])
    assert "\n" not in str(refused.value)
    assert int(model.optimizer.iterations) == 0


def test_a_best_model_without_its_record_is_a_kill_between_the_two_writes_and_resumes(run_dir):
    os.remove(run_dir / "best.json")
    tiny_model().fit(*DATA, epochs=1, verbose=0, callbacks=[BestModelCheckpoint(str(run_dir), monitor="loss")])
    assert json.loads((run_dir / "best.json").read_text())["epoch"] == 1
