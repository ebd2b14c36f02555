"""Portable SavedModel exports of the learners, loadable with plain TensorFlow.

`export_adapt_and_predict` serves a `BootstrappedLearner` (support set, then queries);
`export_predict_sequence` serves a `DelayedLabelLearner` (one labelled sequence, a prediction
at every step).
"""

import tensorflow as tf


def portable_copy(model, example_inputs):
    """A copy of a kerasrwm learner on the loop implementation, with the same weights.

    The copy is built by calling it on `example_inputs` (any batch the model accepts). The
    loop implementation uses only built-in TensorFlow ops, so graphs traced from the copy
    load in any TensorFlow process, without kerasrwm or its op library.
    """
    config = model.get_config()
    config["implementation"] = "loop"
    copy = type(model).from_config(config)
    copy(example_inputs)
    copy.set_weights(model.get_weights())
    return copy


def _checked_image_shape(image_shape):
    image_shape = tuple(int(d) for d in image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"`image_shape` must be (height, width, channels); received: {image_shape!r}.")
    return image_shape


def _save_signature(portable, path, name, function, input_signature):
    """Writes a SavedModel of `portable`'s weights with the one signature `name` = `function`."""
    module = tf.Module()
    # Track the variables only: the SavedModel holds the traced graph, not the Keras objects.
    module.weights = list(portable.weights)
    traced = tf.function(function, input_signature=input_signature)
    setattr(module, name, traced)
    tf.saved_model.save(module, path, signatures={name: traced})
    return path


def export_adapt_and_predict(model, path, image_shape):
    """Writes a SavedModel whose signature adapts to a support set and scores queries.

    Signature `adapt_and_predict`:
    `support_images [B, S, h, w, c] float32`, `support_labels [B, S] int32`,
    `query_images [B, Q, h, w, c] float32` → `{"logits": [B, Q, n_way]}`; B, S and Q may vary
    from call to call. Each query is scored from the state after the support, alone. The
    signature refuses, with a message naming the argument, images of another size or channel
    count, non-finite images, labels outside [0, n_way) and batch or support sizes that differ
    between the arguments.

    Args:
        model: a built `kerasrwm.BootstrappedLearner` (any implementation).
        path: output directory.
        image_shape: `(h, w, c)` of the images, as in training.

    Returns:
        `path`.
    """
    image_shape = _checked_image_shape(image_shape)
    image = tf.zeros([1, 1, *image_shape])
    example = {"support_images": image, "support_labels": tf.zeros([1, 1], tf.int32), "query_images": image}
    portable = portable_copy(model, example)

    # Image sizes are checked in the graph (a loaded signature does not check static shapes).
    signature = [
        tf.TensorSpec([None] * 5, tf.float32, name="support_images"),
        tf.TensorSpec([None, None], tf.int32, name="support_labels"),
        tf.TensorSpec([None] * 5, tf.float32, name="query_images"),
    ]

    def adapt_and_predict(support_images, support_labels, query_images):
        checks = _episode_checks(support_images, support_labels, query_images, image_shape, model.n_way)
        with tf.control_dependencies(checks):
            episode = {
                "support_images": tf.ensure_shape(support_images, [None, None, *image_shape]),
                "support_labels": tf.identity(support_labels),
                "query_images": tf.ensure_shape(query_images, [None, None, *image_shape]),
            }
        return {"logits": portable(episode, training=False)}

    return _save_signature(portable, path, "adapt_and_predict", adapt_and_predict, signature)


def export_predict_sequence(model, path, image_shape):
    """Writes a SavedModel whose signature scores every step of a delayed-label sequence.

    Signature `predict_sequence`:
    `images [B, L, h, w, c] float32`, `labels [B, L] int32` → `{"logits": [B, L, n_way]}`;
    B and L may vary from call to call. The labels are the true labels in time order; step t's
    logits depend on the images of steps <= t and the labels of steps < t only, so a caller
    that learns label t after predicting it may pass any value there until then. The signature
    refuses, with a message naming the argument, images of another size or channel count,
    non-finite images, labels outside [0, n_way) and labels whose [B, L] differs from the images'.

    Args:
        model: a built `kerasrwm.models.DelayedLabelLearner` (any implementation).
        path: output directory.
        image_shape: `(h, w, c)` of the images, as in training.

    Returns:
        `path`.
    """
    image_shape = _checked_image_shape(image_shape)
    portable = portable_copy(model, {"images": tf.zeros([1, 1, *image_shape]), "labels": tf.zeros([1, 1], tf.int32)})

    signature = [
        tf.TensorSpec([None] * 5, tf.float32, name="images"),
        tf.TensorSpec([None, None], tf.int32, name="labels"),
    ]

    def predict_sequence(images, labels):
        checks = _sequence_checks(images, labels, image_shape, model.n_way)
        with tf.control_dependencies(checks):
            sequence = {"images": tf.ensure_shape(images, [None, None, *image_shape]), "labels": tf.identity(labels)}
        return {"logits": portable(sequence, training=False)}

    return _save_signature(portable, path, "predict_sequence", predict_sequence, signature)


def _labelled_images_checks(images, labels, image_shape, n_way, images_name, labels_name):
    """In-graph assertions on labelled images `[B, S, h, w, c]` and their labels `[B, S]`."""
    images_shape = tf.shape(images)
    expected = "[B, S, {}, {}, {}]".format(*image_shape)
    return [
        tf.debugging.assert_equal(
            images_shape[2:], image_shape, message=f"`{images_name}` must be {expected} images as in training"
        ),
        tf.debugging.assert_equal(
            tf.shape(labels),
            images_shape[:2],
            message=f"`{labels_name}` must be [B, S], as `{images_name}` [B, S, h, w, c]",
        ),
        tf.debugging.assert_non_negative(labels, message=f"`{labels_name}` must be in [0, {n_way})"),
        tf.debugging.assert_less(labels, n_way, message=f"`{labels_name}` must be in [0, {n_way})"),
        tf.debugging.assert_all_finite(images, message=f"`{images_name}` must be finite"),
    ]


def _sequence_checks(images, labels, image_shape, n_way):
    """In-graph assertions on one `predict_sequence` call, each naming the argument it checks."""
    return _labelled_images_checks(images, labels, image_shape, n_way, "images", "labels")


def _episode_checks(support_images, support_labels, query_images, image_shape, n_way):
    """In-graph assertions on one `adapt_and_predict` call, each naming the argument it checks."""
    support_shape, query_shape = tf.shape(support_images), tf.shape(query_images)
    expected = "[B, S, {}, {}, {}]".format(*image_shape)
    return [
        *_labelled_images_checks(
            support_images, support_labels, image_shape, n_way, "support_images", "support_labels"
        ),
        tf.debugging.assert_equal(
            query_shape[2:],
            image_shape,
            message=f"`query_images` must be [B, Q, ...] images of the size of `support_images`, {expected}",
        ),
        tf.debugging.assert_equal(
            query_shape[0], support_shape[0], message="`query_images` must have the batch size B of `support_images`"
        ),
        tf.debugging.assert_all_finite(query_images, message="`query_images` must be finite"),
    ]
