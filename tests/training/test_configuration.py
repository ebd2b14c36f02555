"""`make_config`: every key checked alone and together, before a run reads data or claims its folder."""

import pytest

from kerasrwm.training.configuration import DEFAULT_CONFIG
from kerasrwm.training.configuration import KEYS
from kerasrwm.training.configuration import make_config


def _wrong_type(default):
    """A value of another JSON type than `default` (a string for numbers and lists, a number for strings)."""
    return 5 if isinstance(default, str) else "5"


@pytest.mark.parametrize("key", sorted(KEYS))
def test_every_key_refuses_a_value_of_another_type_by_name(key):
    value = _wrong_type(DEFAULT_CONFIG[key])
    if key in ("profile_batch", "jit_compile"):
        value = "x"  # "5" is a profile batch (the command line's form) and a JSON bool is a jit_compile value
    with pytest.raises(ValueError, match=f"`{key}`"):
        make_config({key: value})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"n_way": 1}, "`n_way` must be an integer >= 2"),
        ({"k_extra": -1}, "`k_extra` must be an integer >= 0"),
        ({"k_test_sweep": [1, 0]}, "`k_test_sweep` must be a list of integers >= 1"),
        ({"beta1": -0.5}, "`beta1` must be a finite number >= 0.0"),
        ({"temperature": 0}, "`temperature` must be a finite number > 0.0"),
        ({"dropout": 1.0}, "`dropout` must be a float in [0, 1)"),
        ({"jit_compile": 1}, "`jit_compile` must be 'auto', true or false"),
        ({"backbone": {"class_name": "Conv4Backbone"}}, "`backbone` must be one of ('conv4', 'resnet12')"),
        ({"data": "csv:x"}, "`data` must be 'synthetic', 'npz:PATH', 'folder:PATH' or 'tfds:NAME'"),
        ({"hidden_size": 10, "num_heads": 4}, "`hidden_size` must be divisible by `num_heads`"),
        ({"hand_off_gradient": "reference", "sequence_layer": "lstm"}, "needs sequence_layer='srwm'"),
        ({"preset": "demo", "data_options": "x"}, "`data_options` must be a JSON object"),
    ],
)
def test_bad_values_and_combinations_are_refused_by_name(overrides, message):
    with pytest.raises(ValueError) as error:
        make_config(overrides)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "value, expected", [(0, 0), (7, 7), ("7", 7), ("3,9", [3, 9]), ([3, 9], [3, 9]), ((4, 4), [4, 4])]
)
def test_profile_batch_takes_a_batch_or_a_start_stop_pair(value, expected):
    assert make_config({"profile_batch": value})["profile_batch"] == expected


@pytest.mark.parametrize("value", ["5,x", "", "1,2,3", [9, 3], [0, 3], -1, 2.5, True, None])
def test_profile_batch_refuses_anything_else_by_name(value):
    with pytest.raises(ValueError, match="`profile_batch` must be a batch number >= 0"):
        make_config({"profile_batch": value})


def test_the_defaults_and_every_preset_pass_their_own_checks():
    assert make_config() == make_config(make_config())
    for preset in ("demo", "omniglot", "mini_imagenet"):
        assert make_config({"preset": preset})["steps"] >= 1
