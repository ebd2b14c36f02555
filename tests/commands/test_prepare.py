"""`kerasrwm prepare`: the command writes the dataset, prints where it is and refuses bad sources in one line."""

import numpy as np
import pytest

from kerasrwm.cli import main
from tests.data.benchmarks import fake_sources


@pytest.fixture()
def cifar_archive(tmp_path):
    path = str(tmp_path / "cifar-100-python.tar.gz")
    fake_sources.write_cifar_archive(path, fake_sources.fake_cifar100())
    return path


def test_prepare_writes_the_dataset_and_says_how_to_train_on_it(cifar_archive, tmp_path, capsys):
    output = tmp_path / "fc100"
    assert main(["prepare", "fc100", "--source", cifar_archive, "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(
        f"Preparing fc100 in {output}: 60,000 32x32 images in one .npz file, about 184 MB on disk"
    )
    assert "\n400/400 - " in printed  # the progress bar over the images, one line when not on a terminal
    assert printed.rstrip().endswith(
        "fc100: train 60 classes / 240 images, val 20 classes / 80 images, test 20 classes / 80 images. "
        f"Train with --data npz:{output}/fc100.npz"
    )
    with np.load(output / "fc100.npz") as arrays:
        assert arrays["images"].shape == (400, 32, 32, 3)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["cifar-fs", "--source", "{tmp}/absent.tar.gz"], "`source`='{tmp}/absent.tar.gz' does not exist."),
        (["mini-imagenet", "--source", "{archive}"], "it holds CIFAR data, not ImageNet"),
    ],
)
def test_a_bad_source_is_one_line_naming_it(arguments, message, cifar_archive, tmp_path, capsys):
    fill = {"tmp": str(tmp_path), "archive": cifar_archive}
    arguments = [a.format(**fill) for a in arguments]
    assert main(["prepare", *arguments, "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kerasrwm: error: ") and message.format(**fill) in error
    assert error.count("\n") == 1


def test_an_unknown_dataset_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "imagenet-1k", "--source", "x", "--output", "y"])
    assert "invalid choice: 'imagenet-1k'" in capsys.readouterr().err
