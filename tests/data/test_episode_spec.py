import pytest

from kerasrwm.data import EpisodeSpec


def test_lengths_and_config_round_trip():
    spec = EpisodeSpec(n_way=5, k_shot=3, k_extra=2, n_queries=4)
    assert (spec.support_length, spec.extra_length, spec.images_per_class) == (15, 10, 9)
    assert EpisodeSpec.from_config(spec.get_config()) == spec
    assert spec.get_config() == {"n_way": 5, "k_shot": 3, "k_extra": 2, "n_queries": 4}


@pytest.mark.parametrize(
    "arguments, name",
    [
        ((1, 1), "n_way"),
        ((5, 0), "k_shot"),
        ((5, 1, -1), "k_extra"),
        ((5, 1, 0, 0), "n_queries"),
        ((5, 1.5), "k_shot"),
        ((True, 1), "n_way"),
    ],
)
def test_invalid_values_name_the_argument(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        EpisodeSpec(*arguments)
