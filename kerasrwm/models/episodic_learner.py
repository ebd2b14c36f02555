"""`EpisodicLearner`: the Keras plumbing shared by the package's few-shot learners."""

import keras
import tensorflow as tf

from kerasrwm.models import serving
from kerasrwm.models.sequence_learner import SequenceLearner

MODEL_ARGUMENTS = ("name", "dtype", "trainable")
"""Constructor arguments that belong to `keras.Model`; the others configure the `SequenceLearner`."""


def _rank(value):
    shape = value.shape
    return None if shape is None or (hasattr(shape, "rank") and shape.rank is None) else len(shape)


def _dims(value):
    """The static dimensions of a tensor, array or spec as a tuple (None where unknown)."""
    return tuple(tf.TensorShape(value.shape).as_list())


class EpisodicLearner(keras.Model):
    """Base of the learners: a `SequenceLearner` driven by a protocol, through Keras's own doors.

    A batch is a dict of images `[B, L, h, w, c]` (floating, values in [0, 1]) and integer
    labels `[B, L]`. Every entry point (`fit`, `evaluate`, `train_on_batch`, `test_on_batch`,
    `predict`, a call) takes such a dict, from a `tf.data.Dataset` or NumPy arrays, and `y` may
    carry the targets (`TARGET_KEY`) separately. The learner is built from the first batch it
    sees, before anything is traced, so `model.built` is True after any entry point and
    `save` / `load_model`, Keras's checkpoint callbacks and `export` keep every weight. A batch
    with an unknown or missing key, a wrong rank or dtype, or non-finite images is refused with
    an error naming the key, and a refused batch leaves the model as it was. Shapes may change
    from call to call (K, K', query counts).

    Subclasses set the keys and metric names below and implement `loss_terms` and
    `serving_signature`.

    Args:
        n_way: classes per episode.
        metric_names: the names of the terms `loss_terms` returns, in the order Keras reports them.
        **learner_kwargs: architecture arguments of `SequenceLearner` and `keras.Model` arguments
            (`name`, `dtype`, `trainable`).
    """

    INPUT_KEYS = ()
    """The keys a call reads (the served episode)."""
    TRAINING_KEYS = ()
    """The keys a training or evaluation batch must hold."""
    OPTIONAL_KEYS = ()
    """Keys a batch may hold in addition."""
    TARGET_KEY = None
    """The labels that `fit(x, y)` may pass as `y`; metrics passed to `compile` are scored on them."""
    LOSS_DESCRIPTION = ""

    def __init__(self, n_way, metric_names, **learner_kwargs):
        model_kwargs = {key: learner_kwargs.pop(key) for key in MODEL_ARGUMENTS if key in learner_kwargs}
        super().__init__(**model_kwargs)
        self.learner = SequenceLearner(n_way, dtype=self.dtype_policy, name="sequence_learner", **learner_kwargs)
        self.n_way = self.learner.n_way
        self.image_shape = None
        self.trackers = {name: keras.metrics.Mean(name=name) for name in metric_names}

    # -- the batch ---------------------------------------------------------------------------

    def episode_from_data(self, data):
        """The batch dict of what Keras hands a step: `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError(
                f"{type(self).__name__} does not take `sample_weight`: every query of every episode counts equally."
            )
        if y is None or not isinstance(x, dict):  # a non-dict `x` is refused by `check_batch`
            return x
        if self.TARGET_KEY in x:
            raise ValueError(f"`{self.TARGET_KEY}` was given twice: in `x` and as `y`. Pass it once.")
        return {**x, self.TARGET_KEY: y}

    def check_batch(self, batch, required):
        """Checks the keys, ranks, dtypes and static shapes of `batch` (tensors, arrays or specs).

        Raises:
            ValueError: naming the key at fault and what it should be.
        """
        known = self.TRAINING_KEYS + self.OPTIONAL_KEYS
        optional = [key for key in known if key not in required]
        if not isinstance(batch, dict):
            raise ValueError(
                f"A batch of {type(self).__name__} must be a dict with keys {list(required)}; "
                f"received: {type(batch).__name__}."
            )
        unknown = sorted(set(batch) - set(known))
        missing = [key for key in required if key not in batch]
        if unknown or missing:
            may_hold = f" (and may hold {optional})" if optional else ""
            raise ValueError(
                f"A batch of {type(self).__name__} must be a dict with keys {list(required)}{may_hold}; "
                f"received keys {sorted(batch)}: "
                + "; ".join(f"{what} {keys}" for what, keys in (("missing", missing), ("unknown", unknown)) if keys)
                + "."
            )
        for key, value in batch.items():
            self._check_entry(key, value)
        self._check_consistent(batch)
        return batch

    def _check_entry(self, key, value):
        is_images = key.endswith("images")
        rank, what = (5, "[batch, length, height, width, channels]") if is_images else (2, "[batch, length]")
        if _rank(value) != rank:
            raise ValueError(f"`{key}` must have rank {rank} {what}; received shape {tuple(value.shape)}.")
        dtype = tf.as_dtype(value.dtype)
        if is_images and not dtype.is_floating:
            raise ValueError(
                f"`{key}` must be floating images with values in [0, 1]; received dtype {dtype.name}. "
                "Convert with `images.astype('float32') / 255`."
            )
        if not is_images and not dtype.is_integer:
            raise ValueError(f"`{key}` must be integer class indices in [0, n_way); received dtype {dtype.name}.")

    def _check_consistent(self, batch):
        """Equal batch sizes, images of one size (the built one), labels as long as their images."""
        dims = {key: _dims(value) for key, value in batch.items()}
        batch_sizes = {key: shape[0] for key, shape in dims.items() if shape[0] is not None}
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(f"Every entry of a batch must have the same batch size; received {batch_sizes}.")
        image_shapes = {key: shape[2:] for key, shape in dims.items() if key.endswith("images")}
        if self.image_shape is not None:
            image_shapes["the images the model was built with"] = self.image_shape
        known = {tuple(shape) for shape in image_shapes.values() if None not in shape}
        if len(known) > 1:
            raise ValueError(f"All images must have one (height, width, channels); received {image_shapes}.")
        for key, shape in dims.items():
            if key.endswith("labels"):
                images = key.replace("labels", "images")
                length = dims.get(images, (None, None))[1]
                if images in dims and None not in (length, shape[1]) and length != shape[1]:
                    raise ValueError(
                        f"`{key}` must have one label per image of `{images}`; received length {shape[1]} "
                        f"for {length} images."
                    )

    def checked_images(self, batch):
        """`batch` with each image tensor asserted finite in the graph (the error names the key)."""
        return {
            key: tf.debugging.assert_all_finite(value, f"`{key}` must be finite (no NaN or Inf pixels)")
            if key.endswith("images")
            else value
            for key, value in batch.items()
        }

    def training_batch(self, data):
        """What a train or test step computes on: checked keys, shapes and finite images."""
        batch = self.check_batch(self.episode_from_data(data), self.TRAINING_KEYS)
        return self.checked_images({key: tf.convert_to_tensor(value) for key, value in batch.items()})

    # -- building ----------------------------------------------------------------------------

    def build(self, input_shape):
        """Builds every weight from a dict of shapes (`{key: [batch, length, ...]}`) of a batch."""
        if not isinstance(input_shape, dict):
            raise ValueError(
                f"{type(self).__name__} is built from a dict of shapes with keys {list(self.INPUT_KEYS)}; "
                f"received: {input_shape!r}."
            )
        images_key = next((key for key in self.INPUT_KEYS if key.endswith("images")), None)
        if images_key not in input_shape:
            raise ValueError(f"The shapes to build {type(self).__name__} need `{images_key}`; received {input_shape}.")
        images_shape = tuple(input_shape[images_key])
        self.image_shape = tuple(images_shape[2:])
        self.learner.build(images_shape)

    def build_from_config(self, config):
        """Builds from a saved build config; a compiled learner's optimizer too, so saved weights load whole."""
        super().build_from_config(config)
        self._build_optimizer()

    def _build_optimizer(self):
        optimizer = getattr(self, "optimizer", None)  # None until compiled
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Checks the first batch of every entry point and builds the model from it, eagerly.

        Keras builds a subclassed model inside its first traced step, through `__call__`; the
        learners' steps call their parts directly, so they are built here instead (what Keras
        does under a distribution strategy): `built` is True and the build config recorded
        after the first `fit`, `evaluate`, `train_on_batch` or `test_on_batch`, and a refused
        batch never reaches a trace.
        """
        if data_batch is None and iterator is not None:
            data_batch = iterator.data_adapter.get_tf_dataset().element_spec
        if data_batch is not None:
            self._build_from(self.episode_from_data(data_batch), self.TRAINING_KEYS)
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def _build_from(self, batch, required):
        """Checks a batch (tensors, arrays or specs) and builds what is not built yet from it."""
        self.check_batch(batch, required)
        with self.distribute_strategy.scope():
            if not self.built:
                self.build({key: _dims(value) for key, value in batch.items()})
            if self.TARGET_KEY in batch:
                self._build_compiled_metrics(batch)
            self._build_optimizer()

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict`; checks the first batch and builds the model from it first."""
        structure = x.element_spec if isinstance(x, tf.data.Dataset) else x
        self._build_from(keras.utils.unpack_x_y_sample_weight(structure)[0], self.INPUT_KEYS)
        return super().predict(x, *args, **kwargs)

    def predict_on_batch(self, x):
        self._build_from(x, self.INPUT_KEYS)
        return super().predict_on_batch(x)

    def _build_compiled_metrics(self, batch):
        targets = batch[self.TARGET_KEY]
        prediction_shape = _dims(targets) + (self.n_way,)
        for container in self._compile_metric_containers():
            if not container.built:
                container.build(
                    keras.KerasTensor(_dims(targets), tf.as_dtype(targets.dtype).name),
                    keras.KerasTensor(prediction_shape, self.compute_dtype),
                )
            taken = sorted({metric.name for metric in container.metrics} & set(self.trackers))
            if taken:
                raise ValueError(
                    f"The metrics passed to `compile` may not be named like the terms {type(self).__name__} reports "
                    f"({list(self.trackers)}); received metrics named {taken}. Name them, e.g. "
                    "`keras.metrics.SparseCategoricalAccuracy(name='compiled_accuracy')`."
                )

    # -- Keras's compile contract ------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None, **kwargs):
        """`keras.Model.compile`; `metrics` are scored on `TARGET_KEY` and the learner's predictions.

        The learner computes its loss itself, so `loss` and `loss_weights` are refused; so are
        `weighted_metrics` (there are no sample weights).
        """
        for name, value in (("loss", loss), ("loss_weights", loss_weights), ("weighted_metrics", weighted_metrics)):
            if value is not None:
                raise ValueError(
                    f"{type(self).__name__} computes its own loss, {self.LOSS_DESCRIPTION}; "
                    f"`compile({name}=...)` cannot change it. Pass `optimizer` and, optionally, `metrics` "
                    f"(scored on `{self.TARGET_KEY}` against the predicted logits)."
                )
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        """Recompiles a loaded learner as it was compiled (Keras skips this for a custom `compile`)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self._build_optimizer()

    def _compile_metric_containers(self):
        """Keras's container of the metrics passed to `compile` (an empty list when none)."""
        trackers = list(self.trackers.values())
        return [
            metric for metric in super().metrics if metric.name != "loss" and all(metric is not t for t in trackers)
        ]

    @property
    def metrics(self):
        """The learner's terms (`trackers`), then the metrics passed to `compile`."""
        return list(self.trackers.values()) + self._compile_metric_containers()

    @property
    def metrics_names(self):
        """The names `evaluate` and `train_on_batch` report, in their order."""
        names = list(self.trackers)
        for container in self._compile_metric_containers():
            names.extend(metric.name for metric in container.metrics)
        return names

    @property
    def layers(self):
        """The backbone, the input projection, the blocks and the classifier (what `summary` lists)."""
        return self.learner.parts

    # -- steps -------------------------------------------------------------------------------

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, with `shuffle=False` by default: episodes are drawn at random already."""
        kwargs.setdefault("shuffle", False)
        return super().fit(*args, **kwargs)

    def loss_terms(self, batch, training=None):
        """`(terms, weights, predictions)` of a checked batch.

        `terms` maps every name of `trackers` to a scalar; `weights` the names whose batch mean
        counts with a weight (e.g. the number of steps it averages) to that weight; `predictions`
        are the logits scored against `batch[TARGET_KEY]` by the metrics passed to `compile`.
        """
        raise NotImplementedError

    def compute_loss_terms(self, batch, training=None):
        """Every term of one batch (the loss, its parts, the accuracies) as a dict of scalars."""
        terms, _, _ = self.loss_terms(self.checked_images(self.check_batch(batch, self.TRAINING_KEYS)), training)
        return terms

    def _report(self, batch, terms, weights, predictions):
        for name, value in terms.items():
            if name in weights:
                self.trackers[name].update_state(value, sample_weight=weights[name])
            else:
                self.trackers[name].update_state(value)
        for metric in self._compile_metric_containers():
            metric.update_state(batch[self.TARGET_KEY], predictions)
        return self.get_metrics_result()

    def train_step(self, data):
        batch = self.training_batch(data)
        with tf.GradientTape() as tape:
            terms, weights, predictions = self.loss_terms(batch, training=True)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(terms["loss"] / replicas)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._report(batch, terms, weights, predictions)

    def test_step(self, data):
        batch = self.training_batch(data)
        return self._report(batch, *self.loss_terms(batch, training=False))

    def call_inputs(self, inputs):
        """The checked inputs of a call: the `INPUT_KEYS` of `inputs`, finite images."""
        self.check_batch(inputs, self.INPUT_KEYS)
        return self.checked_images({key: tf.convert_to_tensor(inputs[key]) for key in self.INPUT_KEYS})

    # -- saving and serving ------------------------------------------------------------------

    def _require_built(self, action):
        if not self.built:
            raise ValueError(
                f"Cannot {action} {type(self).__name__} '{self.name}': it has not seen a batch yet, so its "
                "weights do not exist. Train, evaluate or call it on a batch first (or `build` it)."
            )

    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        self._require_built("save")
        return super().save(filepath, overwrite=overwrite, zipped=zipped, **kwargs)

    def save_weights(self, filepath, overwrite=True, **kwargs):
        self._require_built("save the weights of")
        return super().save_weights(filepath, overwrite=overwrite, **kwargs)

    def serving_signature(self):
        """`(name, function, input_signature)` of the served model; see `export`."""
        raise NotImplementedError

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Writes a SavedModel with the learner's serving signature, loadable without kerasrwm.

        The signature (`adapt_and_predict` or `predict_sequence`, also `serving_default` and
        the loaded object's `serve`) runs the loop implementation and checks its arguments in
        the graph. Only `format="tf_saved_model"` is supported, and the signature is fixed.
        """
        if format != "tf_saved_model" or input_signature is not None or kwargs:
            raise ValueError(
                f"{type(self).__name__}.export writes a TensorFlow SavedModel with a fixed signature; "
                f"received format={format!r}, input_signature={input_signature!r}, other arguments {sorted(kwargs)}."
            )
        self._require_built("export")
        serving.save_serving_model(self, filepath)
        if verbose or verbose is None:
            name, _, input_signature = self.serving_signature()
            print(
                f"Saved {type(self).__name__} to {filepath}: signature {name}({', '.join(s.name for s in input_signature)})."
            )
        return filepath

    @property
    def _default_save_signature(self):
        """`tf.saved_model.save(model)`'s signature: the serving signature, on the loop implementation."""
        if not self.built:
            return None
        _, function, input_signature = self.serving_signature()
        return serving.portable_function(function, input_signature)

    def get_config(self):
        config = super().get_config()
        learner_config = self.learner.get_config()
        for key in ("name", "trainable", "dtype"):
            learner_config.pop(key, None)
        config.update(learner_config)
        return config
