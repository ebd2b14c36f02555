"""Keras RNN conventions of the sequence layers and blocks (`kerasrwm.layers.RecurrentLayer`).

Masks against unmasked runs on the trimmed sequences (outputs, final state and gradients),
`return_sequences`, `go_backwards` and `keras.layers.Bidirectional`, `stateful`, the flat state;
`ResidualLSTM`, whose recurrence is `keras.layers.LSTM`, against that layer wherever Keras defines
the behaviour.
"""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasrwm
from kerasrwm.layers import DeltaNet
from kerasrwm.layers import ResidualLSTM
from kerasrwm.layers import SequenceBlock
from tests.layer_testing import IMPLEMENTATIONS

WIDTH = 8

LAYERS = {
    "srwm": lambda **kwargs: kerasrwm.SRWM(2, 4, implementation="loop", **kwargs),
    "srwm_fused": lambda **kwargs: kerasrwm.SRWM(2, 4, implementation="fused", **kwargs),
    "deltanet": lambda **kwargs: DeltaNet(2, 4, **kwargs),
    "lstm": lambda **kwargs: ResidualLSTM(**kwargs),
    "srwm_block": lambda **kwargs: kerasrwm.SRWMBlock(2, 4, 12, implementation="loop", **kwargs),
    "sequence_block": lambda **kwargs: SequenceBlock(DeltaNet(2, 4, return_state=True), 12, **kwargs),
}


def marks_of(name):
    return [pytest.mark.requires_fused] if "fused" in name else []


NAMES = [pytest.param(name, marks=marks_of(name)) for name in LAYERS]

VALID_STEPS = {
    "right": [range(0, 7), range(0, 4), range(0, 2)],
    "left": [range(0, 7), range(3, 7), range(5, 7)],
    "gaps": [range(0, 7), [0, 2, 3, 6], [1, 4]],
}
"""Per padding, the unmasked steps of each of the 3 sequences of 7 steps."""


def built(name, batch_size=None, **conventions):
    layer = LAYERS[name](**conventions)
    layer.build((batch_size, None, WIDTH))
    return layer


def copy_of(layer, batch_size=None, **overrides):
    """A layer with `layer`'s weights and config but for `overrides` (e.g. another reading direction)."""
    clone = layer.__class__.from_config({**layer.get_config(), **overrides})
    clone.build((batch_size, None, WIDTH))
    clone.set_weights(layer.get_weights())
    return clone


def padded_batch(padding, seed=0):
    """`[3, 7, WIDTH]` random sequences (random values at the masked steps too) and their `[3, 7]` mask."""
    inputs = np.random.default_rng(seed).normal(size=(3, 7, WIDTH)).astype(np.float32)
    mask = np.zeros((3, 7), bool)
    for row, steps in enumerate(VALID_STEPS[padding]):
        mask[row, list(steps)] = True
    return tf.constant(inputs), mask


def reading_order(array, go_backwards):
    return np.flip(array, axis=1) if go_backwards else array


def blocks_with_gaps_only(names):
    """`(name, padding)` for every padding; the blocks (the same recurrence) only with gaps unless slow tests run."""
    cases = []
    for name in names:
        for padding in sorted(VALID_STEPS):
            slow = "block" in name and padding != "gaps"
            cases.append(pytest.param(name, padding, marks=marks_of(name) + ([pytest.mark.slow] if slow else [])))
    return cases


@pytest.mark.parametrize("name, padding", blocks_with_gaps_only(LAYERS))
def test_masked_steps_change_nothing_trimmed_sequences_match(name, padding):
    """Outputs at unmasked steps, final states and all gradients equal those of the trimmed sequences."""
    layer = built(name, return_state=True)
    inputs, mask = padded_batch(padding)
    rng = np.random.default_rng(1)
    output_weights = rng.normal(size=inputs.shape).astype(np.float32) * mask[..., None]
    state_weights = [rng.normal(size=(3, *spec[1][1:])).astype(np.float32) for spec in layer.state_specs]

    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs, *state = layer(inputs, mask=tf.constant(mask))
        loss = tf.reduce_sum(outputs * output_weights) + tf.add_n(
            [tf.reduce_sum(s * w) for s, w in zip(state, state_weights, strict=True)]
        )
    padded_gradients = tape.gradient(loss, [inputs, *layer.trainable_weights])

    with tf.GradientTape() as tape:
        tape.watch(inputs)
        trimmed_loss, trimmed = 0.0, []
        for row, steps in enumerate(VALID_STEPS[padding]):
            steps = list(steps)
            row_outputs, *row_state = layer(tf.gather(inputs[row : row + 1], steps, axis=1))
            trimmed.append((row_outputs, row_state))
            trimmed_loss += tf.reduce_sum(row_outputs[0] * output_weights[row, steps])
            trimmed_loss += tf.add_n(
                [tf.reduce_sum(s[0] * w[row]) for s, w in zip(row_state, state_weights, strict=True)]
            )
    trimmed_gradients = tape.gradient(trimmed_loss, [inputs, *layer.trainable_weights])

    for row, steps in enumerate(VALID_STEPS[padding]):
        row_outputs, row_state = trimmed[row]
        np.testing.assert_allclose(outputs.numpy()[row, list(steps)], row_outputs[0], rtol=1e-5, atol=1e-5)
        for actual, expected in zip(state, row_state, strict=True):
            np.testing.assert_allclose(actual[row], expected[0], rtol=1e-5, atol=1e-5)
    input_gradient = padded_gradients[0].numpy()
    assert not input_gradient[~mask].any()  # a masked step influences nothing
    for actual, expected in zip(padded_gradients, trimmed_gradients, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("padding", ["right", "left"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_masked_srwm_steps_leave_the_fast_weights_bitwise_unchanged(implementation, padding):
    """A masked step reads zeros: its query and key are equal, so the delta-rule update is exactly zero."""
    layer = kerasrwm.SRWM(2, 4, input_softmax=True, implementation=implementation, return_state=True)
    inputs = tf.constant(np.random.default_rng(2).normal(size=(2, 6, WIDTH)).astype(np.float32))
    kept = slice(0, 4) if padding == "right" else slice(2, 6)
    mask = np.zeros((2, 6), bool)
    mask[:, kept] = True
    _, *state = layer(inputs, mask=mask)
    _, *trimmed_state = layer(inputs[:, kept])
    for actual, expected in zip(state, trimmed_state, strict=True):
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_without_return_sequences_the_output_is_the_last_unmasked_steps(name, go_backwards):
    layer = built(name, return_state=True, go_backwards=go_backwards)
    inputs, mask = padded_batch("gaps")
    mask[2] = False  # nothing to read: the output is zeros, as Keras's RNNs give
    sequences, *state = layer(inputs, mask=mask)
    last, *last_state = copy_of(layer, return_sequences=False)(inputs, mask=mask)
    assert last.shape == (3, WIDTH)
    read_mask = reading_order(mask, go_backwards)
    for row in range(2):
        final_step = np.flatnonzero(read_mask[row])[-1]
        np.testing.assert_array_equal(last[row], sequences[row, final_step])
    np.testing.assert_array_equal(last[2], np.zeros(WIDTH))
    for actual, expected in zip(last_state, state, strict=True):
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("name", NAMES)
def test_go_backwards_reads_the_reversed_sequence_and_returns_reading_order(name):
    backwards = built(name, return_state=True, go_backwards=True)
    forwards = copy_of(backwards, go_backwards=False)
    inputs, mask = padded_batch("left")
    outputs, *state = backwards(inputs, mask=mask)
    expected, *expected_state = forwards(tf.reverse(inputs, [1]), mask=np.flip(mask, 1).copy())
    np.testing.assert_allclose(outputs, expected, rtol=1e-6, atol=1e-6)
    for actual, reference in zip(state, expected_state, strict=True):
        np.testing.assert_allclose(actual, reference, rtol=1e-6, atol=1e-6)
    output_mask, *state_masks = backwards.compute_mask(inputs, tf.constant(mask))
    np.testing.assert_array_equal(output_mask, np.flip(mask, 1))  # in reading order, like the outputs
    assert state_masks == [None] * len(state)


def test_output_mask_follows_return_sequences():
    layer = built("deltanet")
    mask = tf.constant(padded_batch("right")[1])
    assert layer.compute_mask(None, mask) is mask
    assert copy_of(layer, return_sequences=False).compute_mask(None, mask) is None


# Without return_sequences, Keras's LSTM with zero_output_for_mask returns zeros when the last step is
# masked; here the flag concerns the returned sequences only and the output is the last unmasked step's.
@pytest.mark.parametrize("return_sequences, zero_output_for_mask", [(True, False), (True, True), (False, False)])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_residual_lstm_follows_keras_lstm(go_backwards, return_sequences, zero_output_for_mask):
    """`x + LSTM(LayerNorm(x))` with Keras's own mask, direction, output choice and state."""
    conventions = dict(
        return_sequences=return_sequences,
        return_state=True,
        go_backwards=go_backwards,
        zero_output_for_mask=zero_output_for_mask,
    )
    layer = built("lstm", **conventions)
    lstm = keras.layers.LSTM(WIDTH, **conventions)
    lstm.build((None, None, WIDTH))
    lstm.set_weights(layer.lstm.get_weights())
    inputs, mask = padded_batch("gaps", seed=3)
    outputs, *state = layer(inputs, mask=mask)
    hidden, *expected_state = lstm(layer.layer_norm(inputs), mask=mask)

    residual = reading_order(inputs.numpy(), go_backwards)
    read_mask = reading_order(mask, go_backwards)
    if return_sequences:
        expected = residual + hidden.numpy()
        if zero_output_for_mask:
            assert not hidden.numpy()[~read_mask].any()  # Keras zeros the masked outputs, and so do we
            expected[~read_mask] = 0.0
    else:
        last_steps = [np.flatnonzero(row)[-1] for row in read_mask]
        expected = residual[np.arange(3), last_steps] + hidden.numpy()
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)
    for actual, reference in zip(state, expected_state, strict=True):
        np.testing.assert_allclose(actual, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul", None])
def test_bidirectional_residual_lstm_merges_as_keras_lstm(merge_mode):
    bidirectional = keras.layers.Bidirectional(ResidualLSTM(), merge_mode=merge_mode)
    inputs, mask = padded_batch("right", seed=4)
    outputs = bidirectional(inputs, mask=mask)
    assert bidirectional.backward_layer.go_backwards and bidirectional.backward_layer.zero_output_for_mask
    directions = []
    for layer in (bidirectional.forward_layer, bidirectional.backward_layer):
        lstm = keras.layers.LSTM(WIDTH, return_sequences=True, go_backwards=layer.go_backwards)
        lstm.build((None, None, WIDTH))
        lstm.set_weights(layer.lstm.get_weights())
        read = reading_order(inputs.numpy(), layer.go_backwards) + lstm(layer.layer_norm(inputs), mask=mask).numpy()
        read[~reading_order(mask, layer.go_backwards)] = 0.0
        directions.append(reading_order(read, layer.go_backwards))  # the wrapper flips the backward outputs back
    forward, backward = directions
    expected = {
        "concat": lambda: np.concatenate([forward, backward], axis=-1),
        "sum": lambda: forward + backward,
        "ave": lambda: (forward + backward) / 2,
        "mul": lambda: forward * backward,
        None: lambda: (forward, backward),
    }[merge_mode]()
    for actual, reference in zip(tf.nest.flatten(outputs), tf.nest.flatten(expected), strict=True):
        np.testing.assert_allclose(actual, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_bidirectional_on_a_padded_batch_equals_the_trimmed_sequences(name):
    bidirectional = keras.layers.Bidirectional(LAYERS[name](return_state=True))
    inputs, mask = padded_batch("right", seed=5)
    outputs, *state = bidirectional(inputs, mask=mask)
    assert len(state) == 2 * len(bidirectional.forward_layer.state_specs)
    for row, steps in enumerate(VALID_STEPS["right"]):
        row_outputs, *row_state = bidirectional(inputs[row : row + 1, : len(steps)])
        np.testing.assert_allclose(outputs[row, : len(steps)], row_outputs[0], rtol=1e-5, atol=1e-5)
        assert not outputs.numpy()[row, len(steps) :].any()
        for actual, expected in zip(state, row_state, strict=True):
            np.testing.assert_allclose(actual[row], expected[0], rtol=1e-5, atol=1e-5)


def masked_bidirectional_model():
    """`Masking` -> bidirectional SRWM (every step) -> bidirectional SRWM block (last step) -> Dense."""
    inputs = keras.Input((None, WIDTH))
    hidden = keras.layers.Masking(0.0)(inputs)
    hidden = keras.layers.Bidirectional(kerasrwm.SRWM(2, 4, implementation="loop"), merge_mode="sum")(hidden)
    hidden = keras.layers.Bidirectional(
        kerasrwm.SRWMBlock(2, 4, 12, implementation="auto", return_sequences=False), merge_mode="ave"
    )(hidden)
    return keras.Model(inputs, keras.layers.Dense(3)(hidden))


def test_masked_bidirectional_srwm_model_saves_and_loads_with_identical_predictions(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "... does not support masking and will therefore destroy the mask"
        model = masked_bidirectional_model()
    inputs, mask = padded_batch("left", seed=6)
    inputs = tf.where(mask[..., None], inputs, 0.0)  # what `Masking(0.0)` masks
    predictions = model.predict(inputs, verbose=0)
    for row, steps in enumerate(VALID_STEPS["left"]):
        trimmed = model(tf.gather(inputs[row : row + 1], list(steps), axis=1))
        np.testing.assert_allclose(predictions[row], trimmed[0], rtol=1e-5, atol=1e-5)
    path = str(tmp_path / "bidirectional.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(restored.predict(inputs, verbose=0), predictions)
    assert restored.layers[2].backward_layer.go_backwards and not restored.layers[2].forward_layer.go_backwards


@pytest.mark.parametrize("name", NAMES)
def test_stateful_layer_continues_from_its_last_call_until_reset(name):
    layer = built(name, batch_size=3, stateful=True, return_state=True)
    whole = copy_of(layer, stateful=False)
    inputs, _ = padded_batch("right", seed=7)
    first, *_ = layer(inputs[:, :3])
    second, *state = layer(inputs[:, 3:])
    expected, *expected_state = whole(inputs)
    np.testing.assert_allclose(second, expected[:, 3:], rtol=1e-5, atol=1e-5)
    for actual, reference in zip(state, expected_state, strict=True):
        np.testing.assert_allclose(actual, reference, rtol=1e-5, atol=1e-5)
    layer.reset_states()
    np.testing.assert_array_equal(layer(inputs[:, :3])[0], first)


@pytest.mark.parametrize("name", ["srwm", pytest.param("srwm_block", marks=pytest.mark.slow)])
def test_stateful_layer_continues_through_compiled_predict_calls(name):
    layer = built(name, batch_size=3, stateful=True, return_state=True)
    inputs, _ = padded_batch("right", seed=7)
    expected = copy_of(layer, stateful=False)(inputs)[0]
    symbolic = keras.Input(batch_shape=(3, None, WIDTH))
    model = keras.Model(symbolic, layer(symbolic)[0])
    chunks = [
        model.predict(inputs[:, :3], batch_size=3, verbose=0),
        model.predict(inputs[:, 3:], batch_size=3, verbose=0),
    ]
    np.testing.assert_allclose(np.concatenate(chunks, axis=1), expected, rtol=1e-5, atol=1e-5)


def test_stateful_residual_lstm_follows_keras_stateful_lstm():
    layer = built("lstm", batch_size=3, stateful=True)
    lstm = keras.layers.LSTM(WIDTH, return_sequences=True, stateful=True)
    lstm.build((3, None, WIDTH))
    lstm.set_weights(layer.lstm.get_weights())
    inputs, _ = padded_batch("right", seed=8)
    for chunk in (inputs[:, :4], inputs[:, 4:], "reset", inputs[:, 2:5]):
        if isinstance(chunk, str):
            layer.reset_states()
            lstm.reset_states()
            continue
        expected = chunk + lstm(layer.layer_norm(chunk))
        np.testing.assert_allclose(layer(chunk), expected, rtol=1e-5, atol=1e-6)


def test_stateful_srwm_starts_from_its_trainable_initial_weights_after_a_reset():
    layer = built("srwm", batch_size=3, stateful=True)
    inputs, _ = padded_batch("right", seed=9)

    def gradient_of_initial_weights():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(layer(inputs)))
        return tape.gradient(loss, layer.w_y)

    assert np.abs(gradient_of_initial_weights()).max() > 0
    assert not gradient_of_initial_weights().numpy().any()  # the second call starts from the carried state
    layer.w_y.assign(layer.w_y * 0.5)
    layer.reset_states()
    np.testing.assert_array_equal(layer(inputs), copy_of(layer, stateful=False)(inputs))


class TestStatefulBadUse:
    def test_batch_size_must_be_fixed(self):
        with pytest.raises(ValueError, match=r"stateful=True, which needs a fixed batch size; received inputs of"):
            DeltaNet(2, 4, stateful=True)(keras.Input((None, WIDTH)))

    def test_batch_size_of_later_calls(self):
        layer = DeltaNet(2, 4, stateful=True)
        layer(tf.zeros([2, 3, WIDTH]))
        with pytest.raises(
            ValueError, match=r"is stateful with a batch size of 2; received inputs of shape \(3, 3, 8\)"
        ):
            layer(tf.zeros([3, 3, WIDTH]))

    def test_reset_of_a_layer_that_is_not_stateful_does_nothing_as_in_keras(self):
        keras.layers.LSTM(4).reset_states()
        layer = built("deltanet")
        inputs = padded_batch("right")[0]
        before = layer(inputs)
        layer.reset_states()
        np.testing.assert_array_equal(layer(inputs), before)


@pytest.mark.parametrize("name", NAMES)
def test_state_is_a_flat_list_in_and_out(name):
    layer = built(name, return_state=True)
    inputs, _ = padded_batch("right")
    outputs, *state = layer(inputs[:, :4])
    assert len(state) == len(layer.state_specs) and all(isinstance(tensor, tf.Tensor) for tensor in state)
    from_list, *_ = layer(inputs[:, 4:], initial_state=state)
    from_tuple, *_ = layer(inputs[:, 4:], initial_state=tuple(state))
    np.testing.assert_array_equal(from_list, from_tuple)
    symbolic = keras.Input((None, WIDTH))
    assert len(keras.Model(symbolic, layer(symbolic)).outputs) == 1 + len(state)


def test_mask_of_the_wrong_shape_is_refused_by_name():
    with pytest.raises(ValueError, match=r"`mask` of .* must have shape \[batch, length\] = \(3, 7\); received shape"):
        built("srwm")(padded_batch("right")[0], mask=tf.ones([3, 6], tf.bool))
