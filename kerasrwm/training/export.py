"""Portable SavedModel export: `adapt_and_predict(support_images, support_labels, query_images)`."""

import tensorflow as tf

from kerasrwm.models import BootstrappedLearner


def portable_copy(model, image_shape):
    """A copy of a `BootstrappedLearner` on the loop implementation, with the same weights.

    `image_shape` is `(h, w, c)`; the copy is built on a one-example episode of that shape.

    The loop implementation uses only built-in TensorFlow ops, so graphs traced from the copy
    load in any TensorFlow process, without kerasrwm or its op library.
    """
    config = model.get_config()
    config["implementation"] = "loop"
    copy = BootstrappedLearner.from_config(config)
    image = tf.zeros([1, 1, *image_shape])
    copy({"support_images": image, "support_labels": tf.zeros([1, 1], tf.int32), "query_images": image})
    copy.set_weights(model.get_weights())
    return copy


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
    image_shape = tuple(int(d) for d in image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"`image_shape` must be (height, width, channels); received: {image_shape!r}.")
    portable = portable_copy(model, image_shape)

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

    module = tf.Module()
    # Track the variables only: the SavedModel holds the traced graph, not the Keras objects.
    module.weights = list(portable.weights)
    module.adapt_and_predict = tf.function(adapt_and_predict, input_signature=signature)
    tf.saved_model.save(module, path, signatures={"adapt_and_predict": module.adapt_and_predict})
    return path


def _episode_checks(support_images, support_labels, query_images, image_shape, n_way):
    """In-graph assertions on one `adapt_and_predict` call, each naming the argument it checks."""
    support_shape, labels_shape, query_shape = (
        tf.shape(support_images),
        tf.shape(support_labels),
        tf.shape(query_images),
    )
    expected = "[B, S, {}, {}, {}]".format(*image_shape)
    return [
        tf.debugging.assert_equal(
            support_shape[2:], image_shape, message=f"`support_images` must be {expected} images as in training"
        ),
        tf.debugging.assert_equal(
            query_shape[2:],
            image_shape,
            message=f"`query_images` must be [B, Q, ...] images of the size of `support_images`, {expected}",
        ),
        tf.debugging.assert_equal(
            labels_shape,
            support_shape[:2],
            message="`support_labels` must be [B, S], as `support_images` [B, S, h, w, c]",
        ),
        tf.debugging.assert_equal(
            query_shape[0], support_shape[0], message="`query_images` must have the batch size B of `support_images`"
        ),
        tf.debugging.assert_non_negative(support_labels, message=f"`support_labels` must be in [0, {n_way})"),
        tf.debugging.assert_less(support_labels, n_way, message=f"`support_labels` must be in [0, {n_way})"),
        tf.debugging.assert_all_finite(support_images, message="`support_images` must be finite"),
        tf.debugging.assert_all_finite(query_images, message="`query_images` must be finite"),
    ]
