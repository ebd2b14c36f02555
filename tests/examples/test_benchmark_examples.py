"""The mini-ImageNet and FC100 examples: valid configurations that train on a prepared (here: fake) dataset."""

import json
import os
import pathlib

import pytest

from kerasrwm.cli import main
from kerasrwm.data.benchmarks import prepare_dataset
from kerasrwm.training.configuration import make_config
from tests.data.benchmarks import fake_sources

EXAMPLES = pathlib.Path(__file__).parents[2] / "examples"
TINY_MODEL = [
    "--hidden-size", "8", "--num-layers", "1", "--num-heads", "2", "--ff-dim", "8", "--backbone-channels", "4",
    "--batch-size", "2", "--steps", "2", "--steps-per-epoch", "2", "--validation-episodes", "2",
    "--k-shot", "1", "--learning-rate", "0.001",
]  # fmt: skip


def read_config(example):
    with open(EXAMPLES / example / "config.json") as file:
        return json.load(file)


@pytest.mark.parametrize("example", ["mini_imagenet", "fc100"])
def test_the_configuration_is_valid_and_its_script_uses_it(example):
    config = make_config(read_config(example))
    assert config["steps"] % config["steps_per_epoch"] == 0
    script = (EXAMPLES / example / "run.sh").read_text()
    assert f"kerasrwm prepare {example.replace('_', '-')} " in script
    assert f"--config examples/{example}/config.json" in script


def test_the_configurations_are_the_authors_settings():
    mini, fc100 = read_config("mini_imagenet"), read_config("fc100")
    # train_miniimagenet_10shot_5bootstrap_srwm_conv4.sh: K = 10, K' = 5, KL weight 10
    assert (mini["k_shot"], mini["k_extra"], mini["beta1"], mini["beta2"], mini["beta3"]) == (10, 5, 1.0, 10.0, 1.0)
    # train_fc100_5shot_srwm_conv4.sh: the plain 5-shot SRWM learner, feed-forward 4 x 256
    assert (fc100["k_shot"], fc100["beta2"], fc100["beta3"], fc100["ff_dim"]) == (5, 0.0, 0.0, 1024)
    for config in (mini, fc100):
        assert (config["backbone"], config["backbone_channels"], config["hidden_size"]) == ("conv4", 32, 256)
        assert (config["num_layers"], config["num_heads"], config["dropout"], config["vision_dropout"]) == (
            3,
            16,
            0.1,
            0.1,
        )
        assert (config["batch_size"], config["warmup_steps"], config["steps"]) == (16, 5000, 600000)
        assert config["learning_rate"] is None  # the Noam schedule


@pytest.mark.slow
def test_fc100_trains_from_a_prepared_copy(tmp_path):
    archive = str(tmp_path / "cifar-100-python.tar.gz")
    fake_sources.write_cifar_archive(archive, fake_sources.fake_cifar100())
    manifest = prepare_dataset("fc100", archive, str(tmp_path / "fc100"), verbose=0)
    run = str(tmp_path / "run")
    config = str(EXAMPLES / "fc100" / "config.json")
    assert main(["train", "--config", config, "--data", manifest["load_source"], *TINY_MODEL, "--output", run]) == 0
    assert os.path.exists(os.path.join(run, "finished"))


@pytest.mark.slow
def test_mini_imagenet_trains_from_a_prepared_copy(tmp_path):
    synsets = fake_sources.real_synsets("mini_imagenet")
    fake_sources.write_fake_imagenet(str(tmp_path / "train"), [s for classes in synsets.values() for s in classes])
    fake_sources.write_mini_imagenet_lists(str(tmp_path / "lists"), synsets)
    manifest = prepare_dataset(
        "mini-imagenet", str(tmp_path / "train"), str(tmp_path / "mini"), tmp_path / "lists", verbose=0
    )
    run = str(tmp_path / "run")
    config = str(EXAMPLES / "mini_imagenet" / "config.json")
    flags = [*TINY_MODEL, "--n-way", "2", "--k-extra", "1", "--output", run]
    assert main(["train", "--config", config, "--data", manifest["load_source"], *flags]) == 0
    assert os.path.exists(os.path.join(run, "finished"))
