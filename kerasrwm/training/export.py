"""Portable SavedModel exports of trained learners, loadable with plain TensorFlow.

`export_adapt_and_predict` serves a `BootstrappedLearner` (support set, then queries);
`export_predict_sequence` serves a `DelayedLabelLearner` (one labelled sequence, a prediction
at every step). Both write what the learner's own `export` writes (see
`kerasrwm.models.serving`), for a model built for images of `image_shape`.
"""

from kerasrwm.models import serving


def _built_for(model, image_shape):
    """Builds `model` for `(h, w, c)` images if it is not built; refuses a model built for others."""
    image_shape = tuple(int(d) for d in image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"`image_shape` must be (height, width, channels); received: {image_shape!r}.")
    if not model.built:
        model.build({key: (None, None, *image_shape) for key in model.INPUT_KEYS if key.endswith("images")})
    if tuple(model.image_shape) != image_shape:
        raise ValueError(
            f"`image_shape` {image_shape} differs from the images the model was built for, {tuple(model.image_shape)}."
        )
    return model


def export_adapt_and_predict(model, path, image_shape):
    """Writes a SavedModel with `BootstrappedLearner.serving_signature`, `adapt_and_predict`.

    Args:
        model: a `kerasrwm.BootstrappedLearner` (any implementation).
        path: output directory.
        image_shape: `(h, w, c)` of the images, as in training.

    Returns:
        `path`.
    """
    return serving.save_serving_model(_built_for(model, image_shape), path)


def export_predict_sequence(model, path, image_shape):
    """Writes a SavedModel with `DelayedLabelLearner.serving_signature`, `predict_sequence`.

    Args:
        model: a `kerasrwm.models.DelayedLabelLearner` (any implementation).
        path: output directory.
        image_shape: `(h, w, c)` of the images, as in training.

    Returns:
        `path`.
    """
    return serving.save_serving_model(_built_for(model, image_shape), path)
