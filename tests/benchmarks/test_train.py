"""`kerasrwm bench train`: the FLOP count, the parts, and the A/B workers' agreement."""

import argparse

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.benchmarks import train
from kerasrwm.benchmarks import train_ab


def test_demo_flops_by_hand():
    # 864 images of 28x28x1 through Conv-4 with 16 channels: conv FLOPs per image, forward.
    layers = [28 * 28 * 16 * 9 * 1, 14 * 14 * 16 * 9 * 16, 7 * 7 * 16 * 9 * 16, 3 * 3 * 16 * 9 * 16]
    forward = 2 * sum(layers)
    backward = 2 * layers[0] + 4 * sum(layers[1:])  # no input gradient for the images
    backbone = 864 * (forward + backward)
    # 16 x (25 + 25 + 2 * 4) tokens; features 1*1*16 + 5 labels -> 64; 2 blocks of FF 64<->128 and
    # 4 heads of SRWM with head_dim 16 (4 products of 16 x 52 per step); classifier on 16 * 2 * 4 queries.
    tokens = 16 * 58
    per_token = 21 * 64 + 2 * (2 * 64 * 128 + 4 * 4 * 16 * 52)
    sequence = 3 * 2 * (tokens * per_token + 16 * 2 * 4 * 64 * 5)
    assert train.step_flops("demo") == backbone + sequence


@pytest.mark.slow
def test_parts_compute_the_step_gradients(monkeypatch):
    """The backbone and sequence parts differentiate the same loss pieces as the train step."""
    demo = train.CONFIGURATIONS["demo"]
    tiny = {"backbone_channels": 4, "hidden_size": 8, "num_layers": 1, "num_heads": 2, "ff_dim": 8}
    tiny_demo = {**demo, "image_shape": (16, 16, 1), "batch_size": 2, "learner": {**demo["learner"], **tiny}}
    monkeypatch.setitem(train.CONFIGURATIONS, "demo", tiny_demo)
    model = train.build_learner("demo")
    batch = train.random_batch("demo")
    train.compiled_train_step(model, batch)
    backbone, sequence, optimizer = train._part_functions(model, batch)
    backbone_variables = model.learner.backbone.trainable_variables
    assert len(backbone()) == len(backbone_variables)
    sequence_gradients = sequence()
    assert len(sequence_gradients) == len(model.trainable_variables) - len(backbone_variables)
    assert all(gradient is not None for gradient in sequence_gradients)
    iterations = int(model.optimizer.iterations)
    assert int(optimizer()) == iterations + 1


def test_matmul_peak_is_positive_and_finite():
    peak = train.matmul_peak_gflops(size=256, repeats=2)
    assert np.isfinite(peak) and peak > 0


@pytest.mark.parametrize("assignment", ["KEY", "=value"])
def test_environment_needs_key_and_value(assignment):
    with pytest.raises(ValueError, match="`--env` takes KEY=VALUE"):
        train_ab.parse_environment([assignment], "--env")


def test_unknown_revision_is_named():
    with pytest.raises(ValueError, match="`--baseline` 'no-such-revision'"):
        train_ab.extract_revision("no-such-revision", "/tmp")


@pytest.mark.slow
def test_ab_workers_start_from_the_same_loss():
    """The working tree against itself (HEAD): same weights and batch give the same first loss."""
    result = train_ab.compare(train.CONFIGURATIONS["demo"], "HEAD", rounds=1, repeats=1)
    assert result["current_first_loss"] == pytest.approx(result["baseline_first_loss"], rel=1e-5)
    assert result["current_step_ms"] > 0 and result["baseline_step_ms"] > 0


@pytest.mark.slow
def test_cli_reports_the_settings(monkeypatch):
    args = argparse.Namespace(config="demo", repeats=1, baseline=None, rounds=1, env=[], baseline_env=[])
    monkeypatch.setitem(train.CONFIGURATIONS, "demo", {**train.CONFIGURATIONS["demo"], "batch_size": 2})
    monkeypatch.setattr(train, "matmul_peak_gflops", lambda: 100.0)
    figures = train.run(args)
    assert figures["flop_bound_ms"] == pytest.approx(train.step_flops("demo") / 100e9 * 1e3)
    assert figures["step_over_bound"] == pytest.approx(figures["step_ms"] / figures["flop_bound_ms"])
    assert figures["settings"]["onednn"] == train.runtime.onednn_enabled()
    assert figures["settings"]["intra_op_threads"] == (
        tf.config.threading.get_intra_op_parallelism_threads() or "default"
    )


@pytest.mark.parametrize("name", ["repeats", "rounds"])
def test_counts_must_be_positive(name):
    args = argparse.Namespace(config="demo", repeats=1, baseline=None, rounds=1, env=[], baseline_env=[])
    setattr(args, name, 0)
    with pytest.raises(ValueError, match=f"`{name}` must be an integer >= 1; received {name}=0"):
        train.run(args)
