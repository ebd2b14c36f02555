"""Keras layers: `SRWM`, `DeltaNet`, `FeedForward` and `SRWMBlock` (SRWM + feed-forward)."""

from kerasrwm.layers.delta_net import DeltaNet
from kerasrwm.layers.feed_forward import FeedForward
from kerasrwm.layers.srwm import SRWM
from kerasrwm.layers.srwm_block import SRWMBlock
