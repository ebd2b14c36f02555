"""Portable SavedModel exports of trained learners, loadable with plain TensorFlow.

`export_learner` writes what the learner's own `export` writes (see `kerasrwm.models.serving`):
`adapt_and_predict` for a `BootstrappedLearner` (support set, then queries), `predict_sequence`
for a `DelayedLabelLearner` (a prediction at every step), for a model built for `image_shape`.
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


def export_learner(model, path, image_shape):
    """Writes a SavedModel with the learner's serving signature for `(h, w, c)` images.

    `adapt_and_predict` for a `BootstrappedLearner`, `predict_sequence` for a
    `DelayedLabelLearner` (see their `serving_signature`).

    Args:
        model: a kerasrwm learner (any implementation), built or not.
        path: output directory.
        image_shape: `(h, w, c)` of the images, as in training.

    Returns:
        `path`.
    """
    return serving.save_serving_model(_built_for(model, image_shape), path)
