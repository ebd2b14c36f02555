"""Portable SavedModels of the learners: one serving signature, loadable with plain TensorFlow.

A learner describes its signature (`serving_signature`); `save_serving_model` traces it with
every SRWM on the loop implementation (`kerasrwm.ops.portable_graphs`), so the SavedModel holds
built-in TensorFlow ops only and loads in a process that never imports kerasrwm.
"""

import functools

import tensorflow as tf

from kerasrwm.ops import portable_graphs


def portable_function(function, input_signature):
    """`tf.function(function)` whose traces run every SRWM on the loop implementation."""

    @functools.wraps(function)  # keeps the argument names of the signature
    def traced(*args):
        with portable_graphs():
            return function(*args)

    return tf.function(traced, input_signature=input_signature)


def save_serving_model(model, path):
    """Writes a SavedModel of `model`'s weights and its serving signature to directory `path`.

    The signature is stored under its own name (`adapt_and_predict` or `predict_sequence`), as
    `serving_default` and as the attribute `serve` of the loaded object (Keras's export name).

    Args:
        model: a built kerasrwm learner.
        path: output directory.

    Returns:
        `path`.
    """
    name, function, input_signature = model.serving_signature()
    traced = portable_function(function, input_signature)
    module = tf.Module()
    module.weights = list(model.weights)  # the variables only: the graph is in the signature
    module.serve = traced
    setattr(module, name, traced)
    tf.saved_model.save(module, path, signatures={name: traced, "serving_default": traced})
    return path


def labelled_images_checks(images, labels, image_shape, n_way, images_name, labels_name):
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


def episode_checks(support_images, support_labels, query_images, image_shape, n_way):
    """In-graph assertions on one `adapt_and_predict` call, each naming the argument it checks."""
    support_shape, query_shape = tf.shape(support_images), tf.shape(query_images)
    expected = "[B, S, {}, {}, {}]".format(*image_shape)
    return [
        *labelled_images_checks(support_images, support_labels, image_shape, n_way, "support_images", "support_labels"),
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


def sequence_checks(images, labels, image_shape, n_way):
    """In-graph assertions on one `predict_sequence` call, each naming the argument it checks."""
    return labelled_images_checks(images, labels, image_shape, n_way, "images", "labels")
