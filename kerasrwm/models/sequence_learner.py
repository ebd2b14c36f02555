"""`SequenceLearner`: backbone features + one-hot labels through a stack of SRWM, DeltaNet or LSTM blocks."""

import keras
import tensorflow as tf

from kerasrwm.layers import DeltaNet
from kerasrwm.layers import ResidualLSTM
from kerasrwm.layers import SequenceBlock
from kerasrwm.layers import SRWMBlock
from kerasrwm.layers.initializers import torch_linear_initializer
from kerasrwm.models.backbones import get_backbone
from kerasrwm.ops.srwm import check_hand_off_gradient
from kerasrwm.validation import check_choice
from kerasrwm.validation import check_integer
from kerasrwm.validation import rate

UNKNOWN_LABELS = ("zeros", "class0")
SEQUENCE_LAYERS = ("srwm", "deltanet", "lstm")


def check_compatible_arguments(hidden_size, num_heads, sequence_layer, hand_off_gradient):
    """Raises `ValueError` naming the arguments when valid values cannot go together.

    `hidden_size` must split into `num_heads` heads, and the `"reference"` hand-off gradient
    reproduces the authors' SRWM op, so it needs `sequence_layer="srwm"`.
    """
    if hidden_size % num_heads:
        raise ValueError(
            f"`hidden_size` must be divisible by `num_heads`; received hidden_size={hidden_size}, num_heads={num_heads}."
        )
    if hand_off_gradient != "exact" and sequence_layer != "srwm":
        raise ValueError(
            f"`hand_off_gradient` {hand_off_gradient!r} reproduces the authors' SRWM op and needs "
            f"sequence_layer='srwm'; received sequence_layer={sequence_layer!r}."
        )


@keras.saving.register_keras_serializable(package="kerasrwm")
class SequenceLearner(keras.layers.Layer):
    """The authors' few-shot sequence model, with explicit state.

    The learner is driven piecewise by `BootstrappedLearner`: `encode` the images, `read` the
    sequence from a state, `classify` hidden states.

    Each time step carries one image and, at the same step, the one-hot encoding of its label:
    `features(image) ++ one_hot(label)` → Dense(hidden_size) → `num_layers` blocks →
    Dense(n_way) logits. Query steps carry an "unknown label" input: an all-zero vector (the
    paper's token ∅ = 0, default) or, with `unknown_label="class0"`, the authors' one-hot of
    class 0. A block is a sequence layer followed by the feed-forward block: an `SRWM`
    (default), a `DeltaNet` (the authors' baseline) or a `ResidualLSTM`. The state is one tuple
    per block: `(w_y, w_q, w_k, w_b)`, `(fast_weights,)` or `(h, c)`.

    Args:
        n_way: number of classes N per episode.
        backbone: `"conv4"`, `"resnet12"`, or a Keras layer mapping `[n, h, w, c]` images to
            `[n, features]` (or its serialized config). `get_config` stores the backbone as a
            nested layer config, so custom layers round-trip.
        backbone_channels: Conv-4 channels (32 for 84x84 images, 64 for 28x28 Omniglot).
        vision_dropout: dropout inside the backbone.
        hidden_size: model width D; must be divisible by `num_heads` (head_dim = D / heads).
        num_layers: number of blocks.
        num_heads: SRWM or DeltaNet heads per block (unused by the LSTM).
        ff_dim: feed-forward width.
        dropout: dropout of the sequence layer's output and of the feed-forward blocks.
        unknown_label: `"zeros"` or `"class0"`, the label input of query steps.
        implementation: SRWM implementation (`"auto"`, `"loop"`, `"fused"`; SRWM only).
        beta_init: mean of the initial learning-rate weights (SRWM only).
        sequence_layer: `"srwm"`, `"deltanet"` or `"lstm"`, the sequence layer of each block.
        hand_off_gradient: `"exact"` (default) or `"reference"` (SRWM only): a reproduction of
            the authors' stateful op, not a recommendation; see `kerasrwm.ops.srwm`.
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        n_way,
        backbone="conv4",
        backbone_channels=32,
        vision_dropout=0.0,
        hidden_size=256,
        num_layers=3,
        num_heads=16,
        ff_dim=1024,
        dropout=0.0,
        unknown_label="zeros",
        implementation="auto",
        beta_init=0.0,
        sequence_layer="srwm",
        hand_off_gradient="exact",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.n_way = check_integer("n_way", n_way, minimum=2)
        self.backbone_channels = check_integer("backbone_channels", backbone_channels)
        self.vision_dropout = rate("vision_dropout", vision_dropout)
        self.hidden_size = check_integer("hidden_size", hidden_size)
        self.num_layers = check_integer("num_layers", num_layers)
        self.num_heads = check_integer("num_heads", num_heads)
        self.ff_dim = check_integer("ff_dim", ff_dim)
        self.dropout = rate("dropout", dropout)
        self.unknown_label = check_choice("unknown_label", unknown_label, UNKNOWN_LABELS)
        self.implementation = implementation
        self.beta_init = float(beta_init)
        self.sequence_layer = check_choice("sequence_layer", sequence_layer, SEQUENCE_LAYERS)
        self.hand_off_gradient = check_hand_off_gradient(hand_off_gradient)
        check_compatible_arguments(self.hidden_size, self.num_heads, self.sequence_layer, self.hand_off_gradient)
        if isinstance(backbone, str):
            backbone_kwargs = {"dropout": self.vision_dropout, "dtype": self.dtype_policy}
            if backbone == "conv4":
                backbone_kwargs["channels"] = self.backbone_channels
            self.backbone = get_backbone(backbone, **backbone_kwargs)
        else:
            self.backbone = get_backbone(backbone)
        self.input_projection = keras.layers.Dense(
            self.hidden_size,
            kernel_initializer=torch_linear_initializer(),
            dtype=self.dtype_policy,
            name="input_projection",
        )
        self.blocks = [self._make_block(index) for index in range(self.num_layers)]
        self.classifier = keras.layers.Dense(
            self.n_way, kernel_initializer=torch_linear_initializer(), dtype=self.dtype_policy, name="classifier"
        )

    def _make_block(self, index):
        """Block `index` of the stack, with `sequence_layer` and return_state=True."""
        name = f"{self.sequence_layer}_block_{index}"
        head_dim = self.hidden_size // self.num_heads
        if self.sequence_layer == "srwm":
            return SRWMBlock(
                num_heads=self.num_heads,
                head_dim=head_dim,
                ff_dim=self.ff_dim,
                dropout=self.dropout,
                beta_init=self.beta_init,
                implementation=self.implementation,
                hand_off_gradient=self.hand_off_gradient,
                return_state=True,
                dtype=self.dtype_policy,
                name=name,
            )
        dtype = self.dtype_policy
        if self.sequence_layer == "deltanet":
            layer = DeltaNet(
                self.num_heads, head_dim, dropout=self.dropout, return_state=True, dtype=dtype, name="deltanet"
            )
        else:
            layer = ResidualLSTM(dropout=self.dropout, return_state=True, dtype=dtype, name="lstm")
        return SequenceBlock(layer, self.ff_dim, dropout=self.dropout, return_state=True, dtype=dtype, name=name)

    @property
    def parts(self):
        """The backbone, the input projection, the blocks and the classifier, in the order data flows."""
        return [self.backbone, self.input_projection, *self.blocks, self.classifier]

    def build(self, images_shape):
        image_shape = (None,) + tuple(images_shape[2:])
        feature_size = self.backbone.compute_output_shape(image_shape)[-1]
        shapes = [
            (self.backbone, image_shape),
            (self.input_projection, (None, None, feature_size + self.n_way)),
            *[(block, (None, None, self.hidden_size)) for block in self.blocks],
            (self.classifier, (None, None, self.hidden_size)),
        ]
        for layer, shape in shapes:
            if not layer.built:
                layer.build(shape)

    def encode(self, images, training=None):
        """Backbone features of `[batch, length, h, w, c]` images → `[batch, length, features]`."""
        shape = tf.shape(images)
        flat = tf.reshape(images, tf.concat([[-1], shape[2:]], 0))
        features = tf.cast(
            self.backbone(flat, training=training), self.compute_dtype
        )  # a given backbone keeps its own dtype
        sequence_features = tf.reshape(features, tf.concat([shape[:2], [-1]], 0))
        sequence_features.set_shape(images.shape[:2].concatenate(features.shape[-1:]))
        return sequence_features

    def label_inputs(self, labels, batch_size=None, length=None):
        """One-hot `[batch, length, n_way]` label inputs; `labels=None` gives unknown labels."""
        if labels is not None:
            labels = tf.convert_to_tensor(labels)
            if not labels.dtype.is_integer:
                raise ValueError(f"Labels must be integers in [0, n_way); received dtype {labels.dtype.name}.")
            tf.debugging.assert_non_negative(labels, message="Labels must be in [0, n_way).")
            tf.debugging.assert_less(labels, tf.cast(self.n_way, labels.dtype), message="Labels must be in [0, n_way).")
            return tf.one_hot(labels, self.n_way, dtype=self.compute_dtype)
        if self.unknown_label == "class0":
            return tf.one_hot(tf.zeros([batch_size, length], tf.int32), self.n_way, dtype=self.compute_dtype)
        return tf.zeros([batch_size, length, self.n_way], self.compute_dtype)

    def read(self, features, label_inputs, initial_state=None, training=None):
        """Runs the block stack over `[batch, length, features]` with `[batch, length, n_way]` labels.

        Returns:
            `(hidden [batch, length, hidden_size], state)`: state is a tuple with one state
            tuple per block (see the class docstring).
        """
        hidden = self.input_projection(tf.concat([features, label_inputs], axis=-1))
        states = []
        for index, block in enumerate(self.blocks):
            block_state = None if initial_state is None else initial_state[index]
            hidden, *block_state = block(hidden, initial_state=block_state, training=training)
            states.append(tuple(block_state))
        return hidden, tuple(states)

    def classify(self, hidden):
        """Logits `[..., n_way]` from hidden states `[..., hidden_size]`."""
        return self.classifier(hidden)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "n_way": self.n_way,
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "backbone_channels": self.backbone_channels,
                "vision_dropout": self.vision_dropout,
                "hidden_size": self.hidden_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "ff_dim": self.ff_dim,
                "dropout": self.dropout,
                "unknown_label": self.unknown_label,
                "implementation": self.implementation,
                "beta_init": self.beta_init,
                "sequence_layer": self.sequence_layer,
                "hand_off_gradient": self.hand_off_gradient,
            }
        )
        return config
