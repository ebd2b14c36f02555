"""The `SRWM` layer: multi-head self-referential weight matrices with a residual output."""

import math

import keras
import tensorflow as tf

from kerasrwm.layers.initializers import torch_linear_initializer
from kerasrwm.layers.recurrent_layer import RecurrentLayer
from kerasrwm.ops import resolve_implementation
from kerasrwm.ops import srwm
from kerasrwm.ops.srwm import MIN_HEAD_DIM
from kerasrwm.ops.srwm import check_hand_off_gradient
from kerasrwm.ops.srwm import check_implementation
from kerasrwm.validation import check_integer
from kerasrwm.validation import rate

STATE_NAMES = ("w_y", "w_q", "w_k", "w_b")


@keras.saving.register_keras_serializable(package="kerasrwm")
class SRWM(RecurrentLayer):
    """Multi-head self-referential weight matrix (SRWM) layer.

    Each head is an independent SRWM: at every step it reads its input slice `x_t` with its
    current fast weights to produce an output `y_t`, a query, a key and four learning rates,
    and rewrites all of its own weights with a delta rule (see `kerasrwm.ops.srwm`). The
    heads' outputs are concatenated, projected back to the model width, and added to the
    layer-normalised input, exactly as in the authors' code:
    `output = LayerNorm(h) + Dropout(Dense_no_bias(SRWM(h)))` (the SRWM reads the raw `h`).

    The initial fast weights are trainable parameters shared by every episode; the layer's
    state is the four fast-weight tensors per episode, so a sequence can be processed in parts.
    The layer follows Keras's RNN conventions (see `kerasrwm.layers.RecurrentLayer`): masks,
    `return_sequences`, `go_backwards` (so `keras.layers.Bidirectional` wraps it), `stateful`, and
    the state as a flat list `(w_y, w_q, w_k, w_b)`. A masked step reads an all-zero input, which
    leaves the fast weights exactly unchanged in both implementations (its query and key are the
    same softmax of zeros, so the delta-rule update is zero): the fused op needs no mask of its own.

    Irie, Schlag, Csordás, Schmidhuber, "A Modern Self-Referential Weight Matrix That Learns
    to Modify Itself", ICML 2022.

    Args:
        num_heads: number of independent SRWM heads H.
        head_dim: features per head E (>= 4); the input width must be `num_heads * head_dim`.
        dropout: dropout rate on the projected SRWM output.
        use_layer_norm: residual from `LayerNorm(h)` (True, as the authors) or from `h`.
        input_softmax: apply a softmax over each head's features of the input first.
        beta_init: mean of the initial learning-rate weights `w_b`.
        implementation: `"auto"` (the fused op when available and the compute dtype is float32
            or float64, else the loop), `"loop"`
            (`tf.while_loop`, XLA-compilable, portable) or `"fused"` (custom op).
        return_sequences: return every step's output (default) or the last unmasked step's.
        return_state: also return the final fast weights: `(outputs, w_y, w_q, w_k, w_b)`.
        go_backwards, stateful, zero_output_for_mask: as in `kerasrwm.layers.RecurrentLayer`.
        layer_norm_epsilon: LayerNorm epsilon (1e-5 as in the reference).
        hand_off_gradient: `"exact"` (default) or `"reference"`, a reproduction of the authors'
            stateful op, not a recommendation: the initial state of a call also receives the
            incoming gradient of the state the call returns (see `kerasrwm.ops.srwm`).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[batch, length, num_heads * head_dim]`.
        initial_state: optional flat list `[w_y, w_q, w_k, w_b]` of shapes
            `[batch, num_heads, head_dim, head_dim]` (x3) and `[batch, num_heads, head_dim, 4]`;
            defaults to the trainable initial weights for every episode.
        mask: optional `[batch, length]` booleans; a masked step leaves the state unchanged.
        training: enables dropout.

    Returns:
        `[batch, length, num_heads * head_dim]` (`[batch, num_heads * head_dim]` without
        `return_sequences`), followed by `w_y, w_q, w_k, w_b` with `return_state=True`.

    Example:

    >>> layer = kerasrwm.SRWM(num_heads=4, head_dim=8, return_state=True)
    >>> outputs, *state = layer(tf.random.normal([2, 10, 32]))
    >>> more, *state = layer(tf.random.normal([2, 5, 32]), initial_state=state)
    """

    def __init__(
        self,
        num_heads,
        head_dim,
        dropout=0.0,
        use_layer_norm=True,
        input_softmax=False,
        beta_init=0.0,
        implementation="auto",
        return_sequences=True,
        return_state=False,
        go_backwards=False,
        stateful=False,
        zero_output_for_mask=False,
        layer_norm_epsilon=1e-5,
        hand_off_gradient="exact",
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
        self.head_dim = check_integer("head_dim", head_dim, minimum=MIN_HEAD_DIM)
        self.dropout = rate("dropout", dropout)
        self.use_layer_norm = bool(use_layer_norm)
        self.input_softmax = bool(input_softmax)
        self.beta_init = float(beta_init)
        self.implementation = check_implementation(implementation)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.hand_off_gradient = check_hand_off_gradient(hand_off_gradient)
        self._resolved_implementation = None
        self.output_projection = keras.layers.Dense(
            self.num_heads * self.head_dim,
            use_bias=False,
            kernel_initializer=torch_linear_initializer(),
            dtype=self.dtype_policy,
            name="output_projection",
        )
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.layer_norm = (
            keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm")
            if self.use_layer_norm
            else None
        )

    @property
    def resolved_implementation(self):
        """`"loop"` or `"fused"`: `implementation` resolved on first use (this may build the op)."""
        if self._resolved_implementation is None:
            self._resolved_implementation = resolve_implementation(self.implementation, self.compute_dtype)
        return self._resolved_implementation

    @property
    def supports_jit(self):
        """False on the fused op, which XLA cannot compile; Keras reads it from every sub-layer."""
        return self.resolved_implementation != "fused"

    @supports_jit.setter
    def supports_jit(self, value):
        """Ignores `keras.layers.Layer.__init__`'s default: the implementation decides."""

    @property
    def model_dim(self):
        return self.num_heads * self.head_dim

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"`inputs` of {self.name} must have rank 3 [batch, length, num_heads * head_dim]; "
                f"received shape {tuple(input_shape)}."
            )
        if input_shape[-1] != self.model_dim:
            raise ValueError(
                f"The input width of {self.name} must equal num_heads * head_dim = "
                f"{self.num_heads} * {self.head_dim} = {self.model_dim}; received inputs of shape "
                f"{tuple(input_shape)}."
            )
        std = 1.0 / math.sqrt(self.head_dim)
        square = (self.num_heads, self.head_dim, self.head_dim)
        for name in ("w_y", "w_q", "w_k"):
            setattr(
                self,
                name,
                self.add_weight(name=name, shape=square, initializer=keras.initializers.RandomNormal(0.0, std)),
            )
        self.w_b = self.add_weight(
            name="w_b",
            shape=(self.num_heads, self.head_dim, 4),
            initializer=keras.initializers.RandomNormal(self.beta_init, std),
        )
        self.output_projection.build((None, None, self.model_dim))
        if self.layer_norm is not None:
            self.layer_norm.build((None, None, self.model_dim))
        super().build(input_shape)

    def get_initial_state(self, batch_size):
        """The trainable initial fast weights repeated for `batch_size` episodes."""
        return [
            tf.broadcast_to(tf.cast(weight, self.compute_dtype), tf.concat([[batch_size], tf.shape(weight)], 0))
            for weight in (self.w_y, self.w_q, self.w_k, self.w_b)
        ]

    @property
    def state_specs(self):
        square = [None, self.num_heads, self.head_dim, self.head_dim]
        description = "[batch, num_heads, head_dim, head_dim]"
        specs = tuple((name, square, description) for name in STATE_NAMES[:3])
        return specs + (("w_b", [None, self.num_heads, self.head_dim, 4], "[batch, num_heads, head_dim, 4]"),)

    def read_sequence(self, inputs, state, mask, training):
        batch_size = tf.shape(inputs)[0]
        x = tf.reshape(inputs, [batch_size, -1, self.num_heads, self.head_dim])
        if self.input_softmax:
            x = tf.nn.softmax(x, axis=-1)
        if mask is not None:
            x = tf.where(mask[:, :, None, None], x, tf.zeros_like(x))
        y, final_state = srwm(
            x, *state, implementation=self.resolved_implementation, hand_off_gradient=self.hand_off_gradient
        )
        y = tf.reshape(y, tf.shape(inputs))
        residual = self.layer_norm(inputs) if self.layer_norm is not None else inputs
        return residual + self.output_dropout(self.output_projection(y), training=training), final_state

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "dropout": self.dropout,
                "use_layer_norm": self.use_layer_norm,
                "input_softmax": self.input_softmax,
                "beta_init": self.beta_init,
                "implementation": self.implementation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "hand_off_gradient": self.hand_off_gradient,
            }
        )
        return config
