"""The exported SavedModel loads and agrees with the Keras model in a process without kerasrwm."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.models import DelayedLabelLearner
from kerasrwm.models.sequence_learner import SEQUENCE_LAYERS
from kerasrwm.training import export_learner
from kerasrwm.training.atomic_files import WriteError
from kerasrwm.training.export import GRAPH_BYTES
from tests.models.episodes import as_pixels
from tests.models.episodes import random_episode_batch
from tests.models.learners import TINY_ARGUMENTS
from tests.models.learners import tiny_learner
from tests.training import faults

SCRIPT = Path(__file__).with_name("load_exported.py")
TINY_LEARNER = {key: value for key, value in TINY_ARGUMENTS.items() if key != "num_layers"}


@pytest.mark.slow
def test_export_runs_in_plain_tensorflow_and_matches_keras(tmp_path):
    keras.utils.set_random_seed(1)
    model = tiny_learner(dropout=0.3, vision_dropout=0.2)
    train_batch = random_episode_batch(batch=2, image_shape=(16, 16, 1), seed=0)
    model(train_batch)
    path = export_learner(model, str(tmp_path / "saved"), image_shape=(16, 16, 1))
    # A different support length and query count from anything traced so far.
    episode = random_episode_batch(batch=3, n_way=3, k_shot=4, k_extra=0, queries=5, image_shape=(16, 16, 1), seed=9)
    episode = as_pixels({key: value.numpy() for key, value in episode.items()})
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


@pytest.mark.parametrize(
    "sequence_layer",
    [layer if layer == "srwm" else pytest.param(layer, marks=pytest.mark.slow) for layer in SEQUENCE_LAYERS],
)  # the default suite exports the SRWM; the slow tests every layer
def test_predict_sequence_export_matches_keras_per_step_logits(tmp_path, sequence_layer):
    keras.utils.set_random_seed(2)
    model = DelayedLabelLearner(**TINY_LEARNER, num_layers=2, dropout=0.3, sequence_layer=sequence_layer)
    rng = np.random.default_rng(0)
    model({"images": rng.normal(size=(2, 6, 16, 16, 1)).astype("float32"), "labels": rng.integers(0, 3, (2, 6))})
    path = export_learner(model, str(tmp_path / "saved"), image_shape=(16, 16, 1))
    # A batch size and sequence length different from anything traced so far.
    sequence = {
        "images": rng.random((3, 9, 16, 16, 1), dtype=np.float32),
        "labels": rng.integers(0, 3, (3, 9)).astype("int32"),
    }
    loaded = tf.saved_model.load(path)
    logits = loaded.signatures["predict_sequence"](**{key: tf.constant(value) for key, value in sequence.items()})[
        "logits"
    ]
    expected = model(sequence, training=False).numpy()
    assert expected.shape == (3, 9, 3)
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_export_rejects_an_image_shape_without_channels(tmp_path):
    model = DelayedLabelLearner(**{**TINY_LEARNER, "backbone": keras.layers.Flatten()}, num_layers=1)
    with pytest.raises(ValueError, match=r"`image_shape` must be \(height, width, channels\); received: \(16, 16\)"):
        export_learner(model, str(tmp_path / "saved"), image_shape=(16, 16))


def saved_files(path):
    return {file.relative_to(path): file.read_bytes() for file in sorted(Path(path).rglob("*")) if file.is_file()}


@pytest.mark.parametrize("fault", ["fills up", pytest.param("no room", marks=pytest.mark.slow)])
def test_a_full_disk_keeps_the_previous_export_whole(tmp_path, monkeypatch, fault):
    """ "no room": the disk reports less free space than the model's state and graph; "fills up": the
    SavedModel is half written when the disk fills up."""
    keras.utils.set_random_seed(2)
    model = tiny_learner(num_layers=1)
    model(random_episode_batch(batch=1, image_shape=(16, 16, 1), seed=0))
    path = tmp_path / "saved"
    export_learner(model, str(path), image_shape=(16, 16, 1))
    before = saved_files(path)
    with monkeypatch.context() as patch:
        if fault == "no room":
            faults.report_free_bytes(lambda function: patch.setattr(shutil, "disk_usage", function), GRAPH_BYTES)
        else:
            faults.install(("save:saved", 1), faults.raise_disk_full, lambda f: patch.setattr(os, "replace", f))
        with pytest.raises(WriteError, match=f"the disk holding {path} is full .* nothing already written was lost"):
            export_learner(model, str(path), image_shape=(16, 16, 1))
    assert os.listdir(tmp_path) == ["saved"] and saved_files(path) == before


def test_export_into_a_folder_of_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=f"`path` '{tmp_path}' is a folder of other files than a SavedModel"):
        export_learner(tiny_learner(num_layers=1), str(tmp_path), image_shape=(16, 16, 1))
    assert os.listdir(tmp_path) == ["notes.txt"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(2)
    model = tiny_learner(num_layers=1)
    model(random_episode_batch(batch=1, image_shape=(16, 16, 1), seed=0))
    path = export_learner(model, str(tmp_path_factory.mktemp("saved")), image_shape=(16, 16, 1))
    return tf.saved_model.load(path).signatures["adapt_and_predict"]


def call_inputs(
    batch=2, support=3, queries=2, size=16, channels=1, labels=None, support_images=None, query_images=None
):
    rng = np.random.default_rng(0)
    return {
        "support_images": tf.constant(
            rng.random((batch, support, size, size, channels), dtype=np.float32)
            if support_images is None
            else support_images
        ),
        "support_labels": tf.constant(
            rng.integers(0, 3, (batch, support), dtype=np.int32) if labels is None else labels
        ),
        "query_images": tf.constant(
            rng.random((batch, queries, size, size, channels), dtype=np.float32)
            if query_images is None
            else query_images
        ),
    }


def test_exported_signature_accepts_a_valid_episode(exported):
    assert exported(**call_inputs())["logits"].shape == (2, 2, 3)


@pytest.mark.parametrize(
    "inputs, message",
    [
        (
            lambda: call_inputs(support_images=np.full((2, 3, 16, 16, 1), np.nan, np.float32)),
            "`support_images` must be finite",
        ),
        (lambda: call_inputs(labels=np.full((2, 3), 3, np.int32)), r"`support_labels` must be in \[0, 3\)"),
        (lambda: call_inputs(labels=np.full((2, 3), -1, np.int32)), r"`support_labels` must be in \[0, 3\)"),
        (lambda: call_inputs(labels=np.zeros((2, 4), np.int32)), "`support_labels` must be \\[B, S\\]"),
        (
            lambda: {**call_inputs(), "query_images": tf.zeros([3, 2, 16, 16, 1])},
            "`query_images` must have the batch size",
        ),
        (lambda: call_inputs(support=0), r"`support_images` must hold at least one image per row \(S >= 1\)"),
        (lambda: call_inputs(batch=0), "`support_images` must hold at least one batch row B"),
        (lambda: call_inputs(queries=0), r"`query_images` must hold at least one query \(Q >= 1\)"),
        (
            lambda: call_inputs(support_images=np.zeros((2, 3, 16, 16), np.float32)),
            r"`support_images` must have rank 5, \[B, S, h, w, c\]",
        ),
        (
            lambda: call_inputs(query_images=np.zeros((2, 2, 16, 16, 1, 1), np.float32)),
            r"`query_images` must have rank 5, \[B, Q, h, w, c\]",
        ),
        (lambda: call_inputs(labels=np.zeros((2, 3, 1), np.int32)), r"`support_labels` must have rank 2, \[B, S\]"),
        (
            lambda: call_inputs(support_images=np.full((2, 3, 16, 16, 1), 255.0, np.float32)),
            r"`support_images` must be pixels in \[0, 1\] \(divide 8-bit pixels by 255\)",
        ),
        (
            lambda: call_inputs(query_images=np.full((2, 2, 16, 16, 1), -0.5, np.float32)),
            r"`query_images` must be pixels in \[0, 1\]",
        ),
    ],
)
def test_exported_signature_names_the_bad_argument(exported, inputs, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        exported(**inputs())


@pytest.mark.parametrize("size, channels", [(32, 1), (16, 3)])
def test_exported_signature_refuses_other_image_shapes(exported, size, channels):
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`support_images` must be \[B, S, 16, 16, 1\]"):
        exported(**call_inputs(size=size, channels=channels))


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (np.zeros((2, 4, 16, 16, 3), np.float32), np.zeros((2, 4), np.int32), r"`images` must be \[B, L, 16, 16, 1\]"),
        (np.zeros((2, 4, 16, 16, 1), np.float32), np.zeros((2, 5), np.int32), r"`labels` must be \[B, L\]"),
        (np.zeros((2, 0, 16, 16, 1), np.float32), np.zeros((2, 0), np.int32), r"`images` must hold .* \(L >= 1\)"),
        (
            np.zeros((0, 4, 16, 16, 1), np.float32),
            np.zeros((0, 4), np.int32),
            "`images` must hold at least one batch row",
        ),
        (
            np.zeros((2, 4, 16, 16), np.float32),
            np.zeros((2, 4), np.int32),
            r"`images` must have rank 5, \[B, L, h, w, c\]",
        ),
        (
            np.zeros((2, 4, 16, 16, 1), np.float32),
            np.zeros((2, 4, 1), np.int32),
            r"`labels` must have rank 2, \[B, L\]",
        ),
        (
            np.full((2, 4, 16, 16, 1), 255, np.float32),
            np.zeros((2, 4), np.int32),
            r"`images` must be pixels in \[0, 1\]",
        ),
        (np.zeros((2, 4, 16, 16, 1), np.float32), np.full((2, 4), 3, np.int32), r"`labels` must be in \[0, 3\)"),
        (np.full((2, 4, 16, 16, 1), np.inf, np.float32), np.zeros((2, 4), np.int32), "`images` must be finite"),
    ],
)
def test_predict_sequence_signature_names_the_bad_argument(tmp_path, images, labels, message):
    model = DelayedLabelLearner(**TINY_LEARNER, num_layers=1)
    model({"images": np.zeros((1, 2, 16, 16, 1), np.float32), "labels": np.zeros((1, 2), np.int32)})
    predict = tf.saved_model.load(export_learner(model, str(tmp_path / "saved"), (16, 16, 1)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        predict.signatures["predict_sequence"](images=tf.constant(images), labels=tf.constant(labels))
