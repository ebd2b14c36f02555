"""`SRWMBlock`: an SRWM layer followed by the feed-forward block, with state passed through."""

import keras

from kerasrwm.layers.sequence_block import _FeedForwardBlock
from kerasrwm.layers.srwm import SRWM

SRWM_ARGUMENTS = (
    "num_heads",
    "head_dim",
    "use_layer_norm",
    "input_softmax",
    "beta_init",
    "implementation",
    "hand_off_gradient",
)
"""The block's arguments that configure its SRWM only (`dropout` and `layer_norm_epsilon` serve both parts)."""


@keras.saving.register_keras_serializable(package="kerasrwm")
class SRWMBlock(_FeedForwardBlock):
    """One layer of the authors' SRWM sequence model: `FeedForward(SRWM(h))`.

    The wiring of `kerasrwm.layers.SequenceBlock` with an `SRWM` built from the block's arguments;
    the block follows Keras's RNN conventions as `kerasrwm.SRWM` does.

    Args:
        num_heads: SRWM heads H.
        head_dim: features per head E; the input width must be `num_heads * head_dim`.
        ff_dim: hidden width of the feed-forward block.
        dropout: rate of the SRWM output dropout and of both feed-forward dropouts.
        use_layer_norm, input_softmax, beta_init, implementation, layer_norm_epsilon,
            hand_off_gradient: as in `kerasrwm.SRWM`.
        return_sequences: return every step's output (default) or the last unmasked step's.
        return_state: also return the SRWM's final fast weights: `(outputs, w_y, w_q, w_k, w_b)`.
        go_backwards, stateful, zero_output_for_mask: as in `kerasrwm.layers.RecurrentLayer`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[batch, length, num_heads * head_dim]`.
        initial_state: optional flat SRWM state `[w_y, w_q, w_k, w_b]` (see `kerasrwm.SRWM`).
        mask: optional `[batch, length]` booleans; a masked step leaves the state unchanged.
        training: enables dropout.

    Returns:
        `[batch, length, num_heads * head_dim]` (`[batch, num_heads * head_dim]` without
        `return_sequences`), followed by `w_y, w_q, w_k, w_b` with `return_state=True`.
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
        return_sequences=True,
        return_state=False,
        go_backwards=False,
        stateful=False,
        zero_output_for_mask=False,
        layer_norm_epsilon=1e-5,
        hand_off_gradient="exact",
        **kwargs,
    ):
        srwm = SRWM(
            num_heads=num_heads,
            head_dim=head_dim,
            dropout=dropout,
            use_layer_norm=use_layer_norm,
            input_softmax=input_softmax,
            beta_init=beta_init,
            implementation=implementation,
            return_state=True,
            layer_norm_epsilon=layer_norm_epsilon,
            hand_off_gradient=hand_off_gradient,
            dtype=kwargs.get("dtype"),  # the block's dtype policy
            name="srwm",
        )
        super().__init__(
            srwm,
            ff_dim,
            dropout,
            layer_norm_epsilon,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            zero_output_for_mask=zero_output_for_mask,
            **kwargs,
        )
        self.srwm = srwm
        self.num_heads = srwm.num_heads
        self.head_dim = srwm.head_dim
        self.use_layer_norm = srwm.use_layer_norm
        self.input_softmax = srwm.input_softmax
        self.beta_init = srwm.beta_init
        self.implementation = srwm.implementation
        self.hand_off_gradient = srwm.hand_off_gradient

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in SRWM_ARGUMENTS})
        return config
