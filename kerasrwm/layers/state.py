"""Validation of the `initial_state` argument of the package's stateful sequence layers."""

import tensorflow as tf


def check_initial_state(layer, state, specs, batch_size):
    """Checks a state tuple against its specification and casts it to the layer's compute dtype.

    Args:
        layer: the layer the state is passed to (its name goes into the messages).
        state: the `initial_state` received: a tuple or list of tensors.
        specs: one `(name, shape, description)` per state tensor: `shape` a list whose first
            entry is the batch (filled in here) and `None` for any size, `description` the
            shape in words (e.g. `"[batch, num_heads, head_dim, head_dim]"`).
        batch_size: the inputs' static batch size, or None.

    Returns:
        The state as a tuple of tensors of `layer.compute_dtype`.

    Raises:
        ValueError: naming the entry, the shape or dtype received and the one expected.
    """
    names = tuple(name for name, _, _ in specs)
    if not isinstance(state, (tuple, list)) or len(state) != len(specs):
        length = len(state) if isinstance(state, (tuple, list)) else "?"
        raise ValueError(
            f"`initial_state` of {layer.name} must be a tuple of {len(specs)} tensors {names}; "
            f"received: {type(state).__name__} of length {length}."
        )
    checked = []
    for (name, shape, description), value in zip(specs, state):
        tensor = tf.convert_to_tensor(value)
        if not tensor.dtype.is_floating:
            raise ValueError(
                f"`initial_state` entry {name} of {layer.name} must have a floating dtype; "
                f"received dtype {tensor.dtype.name}."
            )
        expected = [batch_size, *shape[1:]]
        actual = tensor.shape.as_list() if tensor.shape.rank is not None else None
        compatible = (
            actual is not None
            and len(actual) == len(expected)
            and all(a is None or e is None or a == e for a, e in zip(actual, expected))
        )
        if not compatible:
            raise ValueError(
                f"`initial_state` entry {name} of {layer.name} must have shape {description} = "
                f"{expected}; received shape {tensor.shape}."
            )
        checked.append(tf.cast(tensor, layer.compute_dtype))
    return tuple(checked)
