"""`SRWMBlock`: an SRWM layer followed by the feed-forward block, with state passed through."""

import keras

from kerasrwm.layers.feed_forward import FeedForward
from kerasrwm.layers.srwm import SRWM


@keras.saving.register_keras_serializable(package="kerasrwm")
class SRWMBlock(keras.layers.Layer):
    """One layer of the authors' SRWM sequence model: `FeedForward(SRWM(h))`.

    Args:
        num_heads: SRWM heads H.
        head_dim: features per head E; the input width must be `num_heads * head_dim`.
        ff_dim: hidden width of the feed-forward block.
        dropout: rate of the SRWM output dropout and of both feed-forward dropouts.
        use_layer_norm, input_softmax, beta_init, implementation, layer_norm_epsilon: as in
            `kerasrwm.SRWM`.
        return_state: also return the SRWM's final fast weights.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[batch, length, num_heads * head_dim]`.
        initial_state: optional SRWM state tuple `(w_y, w_q, w_k, w_b)` (see `kerasrwm.SRWM`).
        training: enables dropout.

    Returns:
        `[batch, length, num_heads * head_dim]`, or `(outputs, state)` with `return_state=True`.
    """

    def __init__(
        self,
        num_heads,
        head_dim,
        ff_dim,
        dropout=0.0,
        use_layer_norm=True,
        input_softmax=False,
        beta_init=0.0,
        implementation="auto",
        return_state=False,
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.srwm = SRWM(
            num_heads=num_heads,
            head_dim=head_dim,
            dropout=dropout,
            use_layer_norm=use_layer_norm,
            input_softmax=input_softmax,
            beta_init=beta_init,
            implementation=implementation,
            return_state=True,
            layer_norm_epsilon=layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="srwm",
        )
        self.feed_forward = FeedForward(
            ff_dim, dropout=dropout, layer_norm_epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="feed_forward"
        )
        self.num_heads = self.srwm.num_heads
        self.head_dim = self.srwm.head_dim
        self.ff_dim = self.feed_forward.ff_dim
        self.dropout = self.srwm.dropout
        self.use_layer_norm = self.srwm.use_layer_norm
        self.input_softmax = self.srwm.input_softmax
        self.beta_init = self.srwm.beta_init
        self.implementation = implementation
        self.return_state = bool(return_state)
        self.layer_norm_epsilon = self.srwm.layer_norm_epsilon

    def build(self, input_shape):
        self.srwm.build(input_shape)
        self.feed_forward.build(input_shape)

    def get_initial_state(self, batch_size):
        return self.srwm.get_initial_state(batch_size)

    def call(self, inputs, initial_state=None, training=None):
        hidden, state = self.srwm(inputs, initial_state=initial_state, training=training)
        outputs = self.feed_forward(hidden, training=training)
        if self.return_state:
            return outputs, state
        return outputs

    def compute_output_shape(self, input_shape):
        output_shape, state_shape = self.srwm.compute_output_shape(input_shape)
        return (output_shape, state_shape) if self.return_state else output_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "ff_dim": self.ff_dim,
                "dropout": self.dropout,
                "use_layer_norm": self.use_layer_norm,
                "input_softmax": self.input_softmax,
                "beta_init": self.beta_init,
                "implementation": self.implementation,
                "return_state": self.return_state,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
