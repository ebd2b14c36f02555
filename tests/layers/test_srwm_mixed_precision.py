"""Keras's own layer checks, its mixed-precision check included, for the SRWM layers on the fused op."""

import pytest
from keras.src import testing

import kerasrwm
from kerasrwm.ops import fused_srwm

pytestmark = pytest.mark.requires_fused


class TestMixedPrecision(testing.TestCase):
    """`run_layer_test` builds each layer again with `dtype="mixed_float16"` and checks that the
    outputs are float16 and the weights float32; `"fused"` and `"auto"` keep the fused op there."""

    def test_srwm_on_the_fused_op(self):
        self.run_layer_test(
            kerasrwm.SRWM,
            {"num_heads": 2, "head_dim": 4, "implementation": "fused"},
            input_shape=(2, 5, 8),
            expected_output_shape=(2, 5, 8),
            expected_num_trainable_weights=7,
        )

    def test_srwm_auto_resolves_to_the_fused_op_in_mixed_precision(self):
        layer = kerasrwm.SRWM(num_heads=2, head_dim=4, dtype="mixed_bfloat16")
        assert layer.resolved_implementation == ("fused" if fused_srwm.suits_visible_devices() else "loop")
        self.run_layer_test(
            kerasrwm.SRWM,
            {"num_heads": 2, "head_dim": 4, "implementation": "auto"},
            input_shape=(2, 5, 8),
            expected_output_shape=(2, 5, 8),
            expected_num_trainable_weights=7,
        )

    def test_srwm_block_on_the_fused_op(self):
        self.run_layer_test(
            kerasrwm.SRWMBlock,
            {"num_heads": 2, "head_dim": 4, "ff_dim": 16, "implementation": "fused"},
            input_shape=(2, 5, 8),
            expected_output_shape=(2, 5, 8),
        )
