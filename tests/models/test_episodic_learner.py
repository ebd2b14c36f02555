"""`EpisodicLearner`: both learners through Keras's own doors (fit, evaluate, *_on_batch, save, export)."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.models import BootstrappedLearner
from kerasrwm.models import DelayedLabelLearner
from tests.models.episodes import as_pixels
from tests.models.episodes import random_episode_batch
from tests.models.learners import TINY_ARGUMENTS

SEQUENCE_ARGUMENTS = {key: value for key, value in TINY_ARGUMENTS.items()}
IMAGE_SHAPE = (16, 16, 1)  # the smallest a Conv-4 backbone takes


def episodes(count=8, **spec):
    """`count` random episodes as a dict of NumPy arrays (one episode per row)."""
    spec = {"image_shape": IMAGE_SHAPE, **spec}
    return {key: value.numpy() for key, value in random_episode_batch(batch=count, **spec).items()}


def sequences(count=8, n_way=3, length=6, seed=0):
    """`count` labelled sequences `{"images", "labels"}` as NumPy arrays."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_way, size=(count, length)).astype(np.int32)
    return {"images": rng.random((count, length, *IMAGE_SHAPE), dtype=np.float32), "labels": labels}


def batches(arrays, batch_size=2):
    return tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size)


LEARNERS = {
    "bootstrap": (lambda: BootstrappedLearner(**TINY_ARGUMENTS, beta2=1.0, beta3=1.0), episodes),
    "delayed_label": (lambda: DelayedLabelLearner(**SEQUENCE_ARGUMENTS), sequences),
}


@pytest.fixture(params=sorted(LEARNERS))
def learner_and_data(request):
    make, data = LEARNERS[request.param]
    model = make()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=[keras.metrics.SparseCategoricalAccuracy("compiled")])
    return model, data


def assert_same_predictions(model, other, inputs):
    np.testing.assert_array_equal(model.predict(inputs, verbose=0), other.predict(inputs, verbose=0))


@pytest.mark.slow
def test_fit_builds_and_every_saving_door_round_trips_exactly(learner_and_data, tmp_path):
    model, data = learner_and_data
    arrays = data()
    full, weights = str(tmp_path / "epoch.keras"), str(tmp_path / "epoch.weights.h5")
    model.fit(
        batches(arrays),
        epochs=2,
        verbose=0,
        callbacks=[
            keras.callbacks.ModelCheckpoint(full),
            keras.callbacks.ModelCheckpoint(weights, save_weights_only=True),
            keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
        ],
    )
    assert model.built and model.get_build_config() is not None
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert len(loaded.weights) == len(model.weights)
    for mine, theirs in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)
    assert_same_predictions(model, loaded, arrays)
    assert_same_predictions(model, keras.models.load_model(full), arrays)
    fresh = type(model).from_config(model.get_config())
    fresh.build(model.get_build_config()["input_shape"])
    fresh.load_weights(weights)
    assert_same_predictions(model, fresh, arrays)
    # The loaded model is compiled as the original was and trains on.
    assert loaded.metrics_names == [] or "compiled" in loaded.metrics_names
    loaded.fit(batches(arrays), epochs=1, verbose=0)


def test_saving_a_learner_that_has_seen_nothing_is_refused_and_writes_nothing(tmp_path):
    model = BootstrappedLearner(**TINY_ARGUMENTS)
    with pytest.raises(ValueError, match="has not seen a batch yet"):
        model.save(tmp_path / "model.keras")
    with pytest.raises(ValueError, match="has not seen a batch yet"):
        model.save_weights(tmp_path / "model.weights.h5")
    assert not os.listdir(tmp_path)


SLOW = pytest.mark.slow
"""On the heavier entry points (a whole `fit` or `evaluate`) the same property runs with the slow tests."""


@pytest.mark.parametrize(
    "entry",
    ["train_on_batch", pytest.param("test_on_batch", marks=SLOW), pytest.param("fit", marks=SLOW)]
    + [pytest.param("evaluate", marks=SLOW)],
)
def test_every_entry_point_takes_a_dict_with_or_without_y_and_builds(entry):
    model = BootstrappedLearner(**TINY_ARGUMENTS)
    model.compile(optimizer="adam")
    arrays = episodes(count=2)
    labels = arrays.pop("query_labels")
    logs = getattr(model, entry)(arrays, labels, **({} if entry.endswith("batch") else {"verbose": 0}))
    assert model.built
    together = getattr(model, entry)(
        {**arrays, "query_labels": labels}, **({} if entry.endswith("batch") else {"verbose": 0})
    )
    assert np.shape(logs) == np.shape(together) or isinstance(logs, keras.callbacks.History)


def test_delayed_label_learner_takes_labels_as_y():
    model = DelayedLabelLearner(**SEQUENCE_ARGUMENTS)
    model.compile(optimizer="adam")
    arrays = sequences(count=2)
    first = model.test_on_batch({"images": arrays["images"]}, arrays["labels"], return_dict=True)
    second = model.test_on_batch(arrays, return_dict=True)
    assert first == second


@pytest.mark.parametrize("learner_and_data", ["bootstrap", pytest.param("delayed_label", marks=SLOW)], indirect=True)
def test_metrics_names_are_what_evaluate_and_train_on_batch_return(learner_and_data):
    model, data = learner_and_data
    arrays = data()
    results = model.evaluate(batches(arrays), verbose=0)
    as_dict = model.evaluate(batches(arrays), verbose=0, return_dict=True)
    assert sorted(model.metrics_names) == sorted(as_dict)
    np.testing.assert_allclose(results, [as_dict[name] for name in model.metrics_names], rtol=1e-6)
    assert "compiled" in model.metrics_names
    assert len(model.train_on_batch(arrays)) == len(model.metrics_names)


def test_compiled_accuracy_is_the_student_accuracy():
    model = BootstrappedLearner(**TINY_ARGUMENTS)
    model.compile(optimizer="adam", metrics=["accuracy"])
    logs = model.evaluate(batches(episodes()), verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(logs["student_accuracy"])


def test_compiled_metrics_named_like_a_term_are_refused():
    model = DelayedLabelLearner(**SEQUENCE_ARGUMENTS)
    model.compile(optimizer="adam", metrics=["accuracy"])
    with pytest.raises(ValueError, match=r"may not be named like the terms .*received metrics named \['accuracy'\]"):
        model.evaluate(batches(sequences()), verbose=0)


@pytest.mark.parametrize("argument", ["loss", "loss_weights", "weighted_metrics"])
def test_compile_refuses_to_replace_the_learners_loss(argument):
    with pytest.raises(ValueError, match=rf"computes its own loss, beta1 \* CE.*`compile\({argument}=...\)`"):
        BootstrappedLearner(**TINY_ARGUMENTS).compile(optimizer="adam", **{argument: "mse"})


@pytest.mark.slow
def test_one_model_trains_and_evaluates_at_several_k_k_extra_and_query_counts():
    model = BootstrappedLearner(**TINY_ARGUMENTS, beta2=1.0, beta3=1.0)
    model.compile(optimizer="adam")
    for k_shot, k_extra, queries in [(1, 1, 2), (2, 0, 3), (3, 2, 1), (1, 0, 1)]:
        model.fit(batches(episodes(count=4, k_shot=k_shot, k_extra=k_extra, queries=queries)), verbose=0)
    evaluated = [
        model.evaluate(batches(episodes(count=4, k_shot=k, k_extra=0)), verbose=0, return_dict=True)
        for k in (1, 2, 3, 5)
    ]
    assert all(np.isfinite(logs["loss"]) for logs in evaluated)
    # A retrace with relaxed shapes (K' unknown statically) still scores K' = 0 as the student.
    zero = model.evaluate(batches(episodes(count=4, k_extra=0)), verbose=0, return_dict=True)
    assert zero["distill_loss"] == 0.0 and zero["teacher_loss"] == pytest.approx(zero["student_loss"])


def test_one_model_is_scored_at_several_k_and_k_extra_in_turn():
    """The cheap form of the test above: one evaluation step at each K (Keras relaxes the shapes on the
    third), then K' = 0 after K' > 0."""
    model = BootstrappedLearner(**TINY_ARGUMENTS, beta2=1.0, beta3=1.0)
    model.compile(optimizer="adam")
    for k_shot, k_extra in [(1, 1), (2, 1), (3, 1), (2, 0)]:
        logs = model.test_on_batch(episodes(count=2, k_shot=k_shot, k_extra=k_extra), return_dict=True)
        assert np.isfinite(logs["loss"])
    assert logs["distill_loss"] == 0.0 and logs["teacher_loss"] == pytest.approx(logs["student_loss"])


class TestRefusedBatches:
    """A bad batch is refused by name at every entry point, built or not, and leaves the model usable."""

    CASES = {
        "unknown key": (lambda b: {**b, "support_image": b["support_images"]}, r"unknown \['support_image'\]"),
        "missing key": (
            lambda b: {k: v for k, v in b.items() if k != "support_labels"},
            r"missing \['support_labels'\]",
        ),
        "image rank": (lambda b: {**b, "query_images": b["query_images"][:, 0]}, r"`query_images` must have rank 5"),
        "label dtype": (lambda b: {**b, "support_labels": b["support_labels"].astype(np.float32)}, "must be integer"),
        "image dtype": (lambda b: {**b, "support_images": (b["support_images"] * 255).astype(np.uint8)}, "floating"),
        "label length": (lambda b: {**b, "support_labels": b["support_labels"][:, :1]}, "one label per image"),
        "not a dict": (lambda b: b["support_images"], "must be a dict"),
    }

    @pytest.mark.parametrize(
        "entry, built",
        [
            pytest.param(entry, built, marks=() if (entry, built) == ("train_on_batch", False) else SLOW)
            for entry in ("train_on_batch", "test_on_batch", "fit", "evaluate", "predict")
            for built in (False, True)
        ],
    )  # the default suite keeps one door; the slow tests run them all
    def test_refused_by_name_and_the_model_still_trains(self, entry, built):
        model = BootstrappedLearner(**TINY_ARGUMENTS)
        model.compile(optimizer="adam")
        good = episodes(count=2)
        if built:
            model.train_on_batch(good)
        for case, (corrupt, message) in self.CASES.items():
            with pytest.raises(ValueError, match=message):
                getattr(model, entry)(corrupt(good), **({} if entry.endswith("batch") else {"verbose": 0}))
            assert model.built == built, case
        model.fit(batches(good), verbose=0)
        assert model.built

    @pytest.mark.parametrize(
        "key", ["support_images", pytest.param("extra_images", marks=SLOW), pytest.param("query_images", marks=SLOW)]
    )
    def test_non_finite_images_are_refused_and_no_weight_changes(self, key):
        model = BootstrappedLearner(**TINY_ARGUMENTS)
        model.compile(optimizer="adam")
        good = episodes(count=2)
        model.train_on_batch(good)
        before = [w.numpy() for w in model.weights]
        bad = {**good, key: good[key].copy()}
        bad[key][0, 0, 0, 0, 0] = np.nan
        with pytest.raises(tf.errors.InvalidArgumentError, match=f"`{key}` must be finite"):
            model.train_on_batch(bad)
        for value, weight in zip(before, model.weights, strict=True):
            np.testing.assert_array_equal(value, weight.numpy(), err_msg=weight.path)
        model.train_on_batch(good)

    def test_sample_weight_and_targets_given_twice_are_refused(self):
        model = BootstrappedLearner(**TINY_ARGUMENTS)
        model.compile(optimizer="adam")
        good = episodes(count=2)
        with pytest.raises(ValueError, match="does not take `sample_weight`"):
            model.train_on_batch(good, sample_weight=np.ones(2))
        with pytest.raises(ValueError, match="`query_labels` was given twice"):
            model.train_on_batch(good, good["query_labels"])


def test_summary_lists_the_backbone_blocks_and_classifier_with_parameter_counts():
    model = BootstrappedLearner(**TINY_ARGUMENTS)
    model(episodes(count=1))
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    text = "\n".join(lines)
    for layer in model.learner.parts:
        assert layer.name in text
        assert f"{layer.count_params():,}" in text


@pytest.mark.slow
@pytest.mark.parametrize("door", ["export", "tf_saved_model_save"])
def test_exports_serve_the_episode_without_the_package(learner_and_data, tmp_path, door):
    model, data = learner_and_data
    arrays = data(count=2)
    model.fit(batches(arrays), verbose=0)
    path = str(tmp_path / "saved")
    if door == "export":
        model.export(path, verbose=False)
    else:
        tf.saved_model.save(model, path)
    inputs = as_pixels({key: arrays[key] for key in model.INPUT_KEYS})
    np.savez(tmp_path / "inputs.npz", **inputs)
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        f"served = tf.saved_model.load({path!r}).signatures['serving_default']\n"
        f"inputs = dict(np.load({str(tmp_path / 'inputs.npz')!r}))\n"
        "logits = served(**{k: tf.constant(v) for k, v in inputs.items()})['logits'].numpy()\n"
        f"np.save({str(tmp_path / 'served.npy')!r}, logits)\n"
        "assert 'kerasrwm' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, cwd=tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "served.npy"), model.predict(inputs, verbose=0), atol=1e-5)


@pytest.mark.slow
def test_import_kerasrwm_is_enough_to_load_a_model_with_the_noam_schedule(tmp_path):
    from kerasrwm.training import NoamSchedule
    from kerasrwm.training import reference_adam

    model = BootstrappedLearner(**TINY_ARGUMENTS)
    model.compile(optimizer=reference_adam(NoamSchedule(8, 10)))
    model.train_on_batch(episodes(count=2))
    model.save(tmp_path / "model.keras")
    script = f"import keras, kerasrwm\nkeras.models.load_model({str(tmp_path / 'model.keras')!r})\n"
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)


@pytest.mark.slow
def test_a_keras_tuner_hypermodel_checkpoints_and_reloads_the_learner_whole(tmp_path):
    import warnings

    import keras_tuner

    arrays = episodes(count=4)

    class HyperLearner(keras_tuner.HyperModel):
        def build(self, hp):
            model = BootstrappedLearner(**TINY_ARGUMENTS, beta2=hp.Choice("beta2", [0.0, 1.0]), beta3=1.0)
            model.compile(optimizer="adam")
            return model

    tuner = keras_tuner.RandomSearch(
        HyperLearner(), objective=keras_tuner.Objective("val_loss", "min"), max_trials=1, directory=str(tmp_path)
    )
    tuner.search(batches(arrays), validation_data=batches(arrays), epochs=2, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        best = tuner.get_best_models(1)[0]
    assert best.built and not [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    reloaded_loss = best.evaluate(batches(arrays), verbose=0, return_dict=True)["loss"]
    assert reloaded_loss == pytest.approx(tuner.oracle.get_best_trials(1)[0].score, rel=1e-5)
