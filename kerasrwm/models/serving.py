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


PIXEL_RANGE = (0.0, 1.0)
"""The pixel values the learners train on (`kerasrwm.data` scales 8-bit pixels by 1/255)."""


def runtime_rank(tensor):
    """The rank of `tensor` as fed at run time, a scalar int32 tensor.

    Counted from the values of `tf.shape`: a SavedModel signature feeds any rank into its
    placeholders, and Grappler folds `tf.rank` and `tf.size(tf.shape(...))` to the signature's rank.
    """
    return tf.reduce_sum(tf.cast(tf.shape(tensor) >= 0, tf.int32))


def in_order(*stages):
    """Builds `stages` (callables returning in-graph assertions), each after the previous ones passed.

    Later checks may then assume what earlier ones asserted (the rank before the sizes, the sizes
    before the values). Returns the assertions of the last stage, which depend on all others.
    """
    checks = []
    for stage in stages:
        with tf.control_dependencies(checks):
            checks = stage()
    return checks


def rank_checks(named_ranks):
    """Assertions that each `(tensor, name, layout)` of `named_ranks` has the rank of `layout`."""
    return [
        tf.debugging.assert_equal(
            runtime_rank(tensor),
            len(layout),
            message=f"`{name}` must have rank {len(layout)}, [{', '.join(layout)}]",
        )
        for tensor, name, layout in named_ranks
    ]


def pixel_checks(images, name):
    """Assertions that `images` are finite, then in `PIXEL_RANGE` (one min and one max)."""
    low, high = PIXEL_RANGE
    message = f"`{name}` must be pixels in [{low:g}, {high:g}] (divide 8-bit pixels by 255)"
    return in_order(
        lambda: [tf.debugging.assert_all_finite(images, message=f"`{name}` must be finite")],
        lambda: [
            tf.debugging.assert_greater_equal(tf.reduce_min(images), low, message=message),
            tf.debugging.assert_less_equal(tf.reduce_max(images), high, message=message),
        ],
    )


def labelled_images_checks(images, labels, image_shape, n_way, names):
    """In-graph assertions on labelled images `[B, S, h, w, c]` and their labels `[B, S]`.

    Args:
        images, labels: the tensors fed to the signature.
        image_shape: `(h, w, c)` of the training images.
        n_way: labels must be in `[0, n_way)`.
        names: `(images_name, labels_name, length_name)`, e.g. `("images", "labels", "L")`.

    Returns:
        Assertions, in order: ranks; sizes (B and the length at least 1, the image size of
        training, labels `[B, length]`); label and pixel values (finite, in `PIXEL_RANGE`).
    """
    images_name, labels_name, length = names
    layout = ("B", length, "h", "w", "c")
    expected = "[B, {}, {}, {}, {}]".format(length, *image_shape)

    def sizes():
        images_shape = tf.shape(images)
        return [
            tf.debugging.assert_positive(
                images_shape[0], message=f"`{images_name}` must hold at least one batch row B"
            ),
            tf.debugging.assert_positive(
                images_shape[1], message=f"`{images_name}` must hold at least one image per row ({length} >= 1)"
            ),
            tf.debugging.assert_equal(
                images_shape[2:], image_shape, message=f"`{images_name}` must be {expected} images as in training"
            ),
            tf.debugging.assert_equal(
                tf.shape(labels),
                images_shape[:2],
                message=f"`{labels_name}` must be [B, {length}], as `{images_name}` [B, {length}, h, w, c]",
            ),
        ]

    def values():
        return [
            tf.debugging.assert_non_negative(labels, message=f"`{labels_name}` must be in [0, {n_way})"),
            tf.debugging.assert_less(labels, n_way, message=f"`{labels_name}` must be in [0, {n_way})"),
            *pixel_checks(images, images_name),
        ]

    ranks = rank_checks([(images, images_name, layout), (labels, labels_name, ("B", length))])
    return in_order(lambda: ranks, sizes, values)


def episode_checks(support_images, support_labels, query_images, image_shape, n_way):
    """In-graph assertions on one `adapt_and_predict` call, each naming the argument it checks.

    Refused: a rank other than `[B, S, h, w, c]` / `[B, S]` / `[B, Q, h, w, c]`; B, S or Q of 0;
    images of another size than in training; labels outside `[0, n_way)`; pixels that are not
    finite or outside `PIXEL_RANGE`.
    """
    support = labelled_images_checks(
        support_images, support_labels, image_shape, n_way, ("support_images", "support_labels", "S")
    )
    expected = "[B, Q, {}, {}, {}]".format(*image_shape)

    def query_sizes():
        query_shape = tf.shape(query_images)
        return [
            tf.debugging.assert_equal(
                query_shape[0],
                tf.shape(support_images)[0],
                message="`query_images` must have the batch size B of `support_images`",
            ),
            tf.debugging.assert_positive(
                query_shape[1], message="`query_images` must hold at least one query (Q >= 1)"
            ),
            tf.debugging.assert_equal(
                query_shape[2:],
                image_shape,
                message=f"`query_images` must be {expected} images of the size of `support_images`",
            ),
        ]

    query = in_order(
        lambda: rank_checks([(query_images, "query_images", ("B", "Q", "h", "w", "c"))]),
        query_sizes,
        lambda: pixel_checks(query_images, "query_images"),
    )
    return [*support, *query]


def sequence_checks(images, labels, image_shape, n_way):
    """In-graph assertions on one `predict_sequence` call, each naming the argument it checks.

    Refused: a rank other than `[B, L, h, w, c]` / `[B, L]`; B or L of 0; images of another
    size than in training; labels outside `[0, n_way)`; pixels not finite or outside `PIXEL_RANGE`.
    """
    return labelled_images_checks(images, labels, image_shape, n_way, ("images", "labels", "L"))
