"""The `DeltaNet` layer: multi-head delta-rule fast weights programmed by slow projections."""

import keras
import tensorflow as tf

from kerasrwm.layers.initializers import torch_linear_initializer
from kerasrwm.layers.recurrent_layer import RecurrentLayer
from kerasrwm.ops.delta_net_loop import delta_net_loop
from kerasrwm.validation import check_integer
from kerasrwm.validation import rate


def sum_normalised_elu(logits):
    """The feature map of q and k: `(elu(u) + 1) / sum_e (elu(u_e) + 1)` over the last axis."""
    positive = tf.nn.elu(logits) + 1.0
    return positive / tf.reduce_sum(positive, axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="kerasrwm")
class DeltaNet(RecurrentLayer):
    """Multi-head DeltaNet fast-weight layer, pre-LayerNorm with a residual output.

    A slow projection (no bias) of `LayerNorm(x)` gives, per head and step, a query, a key, a
    value and one learning rate `beta = sigmoid(.)`; queries and keys go through the
    sum-normalised `elu + 1` feature map. Each head's fast matrix `[head_dim, head_dim]` starts
    at zero and is written with the delta rule, then read with the query (see
    `kerasrwm.ops.delta_net_loop`). The heads' outputs are concatenated, projected back to the
    input width (no bias) and added to the raw input:
    `output = x + Dropout(Dense(DeltaRule(q, k, v, beta)))`, as the authors' `FastFFlayer`.

    The state is the fast matrices of every episode, so a sequence can be processed in parts.
    The layer follows Keras's RNN conventions (see `kerasrwm.layers.RecurrentLayer`); a masked
    step has the learning rate 0, so its write leaves the fast matrices exactly unchanged.

    Schlag, Irie, Schmidhuber, "Linear Transformers Are Secretly Fast Weight Programmers",
    ICML 2021; the few-shot baseline of Irie et al., ICML 2022.

    Args:
        num_heads: number of heads H.
        head_dim: key, query and value size E per head; the input width D is free.
        dropout: dropout rate on the projected output.
        return_sequences: return every step's output (default) or the last unmasked step's.
        return_state: also return the final fast matrices: `(outputs, fast_weights)`.
        go_backwards, stateful, zero_output_for_mask: as in `kerasrwm.layers.RecurrentLayer`.
        layer_norm_epsilon: LayerNorm epsilon (1e-5 as in the reference).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[batch, length, D]`.
        initial_state: optional flat list `[fast_weights]`, `[batch, num_heads, head_dim, head_dim]`;
            defaults to zeros (a fresh memory for every episode).
        mask: optional `[batch, length]` booleans; a masked step leaves the state unchanged.
        training: enables dropout.

    Returns:
        `[batch, length, D]` (`[batch, D]` without `return_sequences`), followed by
        `fast_weights` with `return_state=True`.

    Example:

    >>> layer = kerasrwm.layers.DeltaNet(num_heads=4, head_dim=8, return_state=True)
    >>> outputs, fast_weights = layer(tf.random.normal([2, 10, 32]))
    >>> more, fast_weights = layer(tf.random.normal([2, 5, 32]), initial_state=[fast_weights])
    """

    def __init__(
        self,
        num_heads,
        head_dim,
        dropout=0.0,
        return_sequences=True,
        return_state=False,
        go_backwards=False,
        stateful=False,
        zero_output_for_mask=False,
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            zero_output_for_mask=zero_output_for_mask,
            **kwargs,
        )
        self.num_heads = check_integer("num_heads", num_heads)
        self.head_dim = check_integer("head_dim", head_dim)
        self.dropout = rate("dropout", dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.slow_projection = keras.layers.Dense(
            self.num_heads * (3 * self.head_dim + 1),
            use_bias=False,
            kernel_initializer=torch_linear_initializer(),
            dtype=self.dtype_policy,
            name="slow_projection",
        )
        self.output_projection = None
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    @property
    def state_specs(self):
        square = [None, self.num_heads, self.head_dim, self.head_dim]
        return (("fast_weights", square, "[batch, num_heads, head_dim, head_dim]"),)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"`inputs` of {self.name} must have rank 3 [batch, length, features] with a known "
                f"feature size; received shape {tuple(input_shape)}."
            )
        self.output_projection = keras.layers.Dense(
            input_shape[-1],
            use_bias=False,
            kernel_initializer=torch_linear_initializer(),
            dtype=self.dtype_policy,
            name="output_projection",
        )
        self.layer_norm.build(input_shape)
        self.slow_projection.build(input_shape)
        self.output_projection.build((None, None, self.num_heads * self.head_dim))
        super().build(input_shape)

    def get_initial_state(self, batch_size):
        """Zero fast matrices for `batch_size` episodes: `[fast_weights]`."""
        return [tf.zeros([batch_size, self.num_heads, self.head_dim, self.head_dim], self.compute_dtype)]

    def read_sequence(self, inputs, state, mask, training):
        shape = tf.shape(inputs)
        projected = tf.reshape(
            self.slow_projection(self.layer_norm(inputs)), [shape[0], shape[1], self.num_heads, 3 * self.head_dim + 1]
        )
        query_logits, key_logits, values, rate_logits = tf.split(
            projected, [self.head_dim, self.head_dim, self.head_dim, 1], axis=-1
        )
        rates = tf.sigmoid(rate_logits)
        if mask is not None:
            rates = tf.where(mask[:, :, None, None], rates, tf.zeros_like(rates))
        outputs, fast_weights = delta_net_loop(
            sum_normalised_elu(query_logits), sum_normalised_elu(key_logits), values, rates, state[0]
        )
        outputs = tf.reshape(outputs, [shape[0], shape[1], self.num_heads * self.head_dim])
        return inputs + self.output_dropout(self.output_projection(outputs), training=training), [fast_weights]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
