"""Portable SavedModel exports of trained learners, loadable with plain TensorFlow.

`export_learner` writes what the learner's own `export` writes (see `kerasrwm.models.serving`):
`adapt_and_predict` for a `BootstrappedLearner` (support set, then queries), `predict_sequence`
for a `DelayedLabelLearner` (a prediction at every step), for a model built for `image_shape`.
The SavedModel is written whole or not at all (`kerasrwm.training.atomic_files`).
"""

import os

from kerasrwm.models import serving
from kerasrwm.training.atomic_files import check_writable
from kerasrwm.training.atomic_files import state_bytes
from kerasrwm.training.atomic_files import write_atomically

SAVED_MODEL_FILE = "saved_model.pb"
# Room for the serving graph on top of the variables: 0.4 MiB measured for a one-block learner.
GRAPH_BYTES = 8 << 20


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


def check_export_path(path, name="`path`"):
    """Raises unless a SavedModel can be written to the folder `path`: new, empty, or a previous export.

    Args:
        path: the SavedModel folder.
        name: how the caller calls it in the messages (e.g. `"--output"`).

    Raises:
        kerasrwm.training.atomic_files.WriteError: `path` is a file, or cannot be written.
        ValueError: `path` is a folder holding other files than a SavedModel (export replaces it whole).
    """
    check_writable(path, name)
    if os.path.isdir(path) and os.listdir(path) and not os.path.exists(os.path.join(path, SAVED_MODEL_FILE)):
        raise ValueError(
            f"{name} {path!r} is a folder of other files than a SavedModel, which an export would replace; "
            "choose a new folder (or a previous export)."
        )


def export_learner(model, path, image_shape):
    """Writes a SavedModel with the learner's serving signature for `(h, w, c)` images.

    `adapt_and_predict` for a `BootstrappedLearner`, `predict_sequence` for a
    `DelayedLabelLearner` (see their `serving_signature`).

    Args:
        model: a kerasrwm learner (any implementation), built or not.
        path: output directory: new, empty, or a previous export, which is replaced whole.
        image_shape: `(h, w, c)` of the images, as in training.

    Returns:
        `path`.

    Raises:
        ValueError: a bad `image_shape` or `path` (`check_export_path`).
        kerasrwm.training.atomic_files.WriteError: the disk is full; a previous export at `path` stays whole.
    """
    check_export_path(path)
    model = _built_for(model, image_shape)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomically(
        path, lambda temporary: serving.save_serving_model(model, temporary), state_bytes(model) + GRAPH_BYTES
    )
    return path
