"""Image backbones mapping `[batch, h, w, c]` images to `[batch, features]`."""

import keras

from kerasrwm.models.backbones.batch_normalization import BatchNormalization
from kerasrwm.models.backbones.conv4 import Conv4Backbone
from kerasrwm.models.backbones.resnet12 import ResNet12Backbone

BACKBONES = {"conv4": Conv4Backbone, "resnet12": ResNet12Backbone}


def get_backbone(name_or_layer, **kwargs):
    """Returns a backbone layer.

    Args:
        name_or_layer: `"conv4"`, `"resnet12"`, a `keras.layers.Layer` (returned unchanged) or the
            serialized config of one (`keras.saving.serialize_keras_object`), deserialized.
        **kwargs: constructor arguments of the named backbone (not allowed with a layer).

    Returns:
        A `keras.layers.Layer` mapping `[batch, h, w, c]` images to `[batch, features]`.
    """
    if isinstance(name_or_layer, dict):
        name_or_layer = keras.saving.deserialize_keras_object(name_or_layer)
    if isinstance(name_or_layer, keras.layers.Layer):
        if kwargs:
            raise ValueError(f"`backbone` arguments apply only to a backbone name; received a layer and {kwargs}.")
        return name_or_layer
    if isinstance(name_or_layer, str) and name_or_layer in BACKBONES:
        return BACKBONES[name_or_layer](**kwargs)
    raise ValueError(
        f"`backbone` must be one of {tuple(BACKBONES)}, a `keras.layers.Layer` or its serialized config; "
        f"received: {name_or_layer!r}."
    )
