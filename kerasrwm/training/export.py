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
    from call to call. Each query is scored from the state after the support, alone.

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

    signature = [
        tf.TensorSpec([None, None, *image_shape], tf.float32, name="support_images"),
        tf.TensorSpec([None, None], tf.int32, name="support_labels"),
        tf.TensorSpec([None, None, *image_shape], tf.float32, name="query_images"),
    ]

    def adapt_and_predict(support_images, support_labels, query_images):
        episode = {"support_images": support_images, "support_labels": support_labels, "query_images": query_images}
        return {"logits": portable(episode, training=False)}

    module = tf.Module()
    # Track the variables only: the SavedModel holds the traced graph, not the Keras objects.
    module.weights = list(portable.weights)
    module.adapt_and_predict = tf.function(adapt_and_predict, input_signature=signature)
    tf.saved_model.save(module, path, signatures={"adapt_and_predict": module.adapt_and_predict})
    return path
