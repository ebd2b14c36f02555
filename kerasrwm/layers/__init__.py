"""Keras layers: the sequence layers `SRWM`, `DeltaNet` and `ResidualLSTM`, `FeedForward`, and the
blocks `SRWMBlock` (SRWM + feed-forward) and `SequenceBlock` (any sequence layer + feed-forward);
`RecurrentLayer` is their base, which gives the sequence layers and blocks Keras's RNN conventions."""

from kerasrwm.layers.delta_net import DeltaNet
from kerasrwm.layers.feed_forward import FeedForward
from kerasrwm.layers.recurrent_layer import RecurrentLayer
from kerasrwm.layers.residual_lstm import ResidualLSTM
from kerasrwm.layers.sequence_block import SequenceBlock
from kerasrwm.layers.srwm import SRWM
from kerasrwm.layers.srwm_block import SRWMBlock
