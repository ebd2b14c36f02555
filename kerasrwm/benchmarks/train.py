"""`kerasrwm bench train`: one bootstrapped training step, its parts, and its distance to the FLOP bound.

For a named configuration (`CONFIGURATIONS`) the benchmark builds a `BootstrappedLearner` with the
public API and default settings and reports, in one run:

- `step_ms`: the compiled `train_step` on a fixed random batch (median over `--repeats` calls);
- its parts, each a compiled function timed alone: `input_ms` (one batch of the in-graph episode
  sampler on synthetic data of the configuration's image shape), `backbone_ms` (forward +
  backward of the backbone over all the batch's images), `sequence_ms` (forward + backward of the
  SRWM stack and the loss from fixed features), `optimizer_ms` (one optimizer update), and
  `rest_ms`, the step less the last three (negative when parts overlap in the step);
- `step_gflop`, the multiply-adds x 2 of the step's convolutions and dense layers forward and
  backward plus the SRWM recurrence (`step_flops`), the achieved GFLOP/s, a float32 matmul peak
  measured in the same run, and `step_over_bound`, the step time over `step_gflop / peak`;
- `settings`: the CPU, its vector extensions, oneDNN, the thread pools, XLA.

With `--baseline REV` the step is also timed A/B against the package at a git revision (see
`kerasrwm.benchmarks.train_ab`).
"""

import os
import platform

import keras
import numpy as np
import tensorflow as tf

from kerasrwm import runtime
from kerasrwm.benchmarks.timing import time_call
from kerasrwm.data import EpisodeSpec
from kerasrwm.data import episode_dataset
from kerasrwm.data import load_source
from kerasrwm.models import BootstrappedLearner
from kerasrwm.training.presets import PRESETS
from kerasrwm.training.tasks import ARCHITECTURE_KEYS
from kerasrwm.validation import check_integer


def _configuration(preset, image_shape, **changes):
    """A step configuration from a preset (`kerasrwm.training.presets`) with `changes`.

    Args:
        preset: the name of the preset: its episodes, batch size and architecture.
        image_shape: `(height, width, channels)` of the images (a preset may leave its data open).
        **changes: configuration keys that differ from the preset.

    Returns:
        `{"spec": EpisodeSpec arguments, "image_shape", "batch_size", "learner": architecture arguments}`.
    """
    settings = {**PRESETS[preset], **changes}
    return {
        "spec": {key: settings[key] for key in ("n_way", "k_shot", "k_extra", "n_queries")},
        "image_shape": image_shape,
        "batch_size": settings["batch_size"],
        "learner": {key: settings[key] for key in ARCHITECTURE_KEYS if key in settings and key != "n_way"},
    }


CONFIGURATIONS = {
    # `kerasrwm demo`: Conv-4 with 16 channels on 28x28 synthetic characters.
    "demo": _configuration("demo", (28, 28, 1)),
    # The Omniglot study (Table 2, right half): K = 10 and the authors' 64 Conv-4 channels.
    "omniglot": _configuration("omniglot", (28, 28, 1), k_shot=10, backbone_channels=64),
    # The authors' bootstrapping recipe on Omniglot (examples/bootstrap_study_v3/authors_recipe.json before any
    # reduction): their mini-ImageNet model (reference SRWM stack, dropout 0.1 in the backbone and the sequence
    # model) with 64 Conv-4 channels, K = 10, 4 queries and the class-0 query token.
    "omniglot_authors": _configuration(
        "mini_imagenet", (28, 28, 1), k_shot=10, n_queries=4, backbone_channels=64, unknown_label="class0"
    ),
    # As the study runs it (authors_recipe.json): Conv-4 reduced to 32 channels, everything else the authors'.
    "omniglot_authors_32": _configuration(
        "mini_imagenet", (28, 28, 1), k_shot=10, n_queries=4, backbone_channels=32, unknown_label="class0"
    ),
    # The authors' mini-ImageNet model, at K = 10.
    "mini_imagenet": _configuration("mini_imagenet", (84, 84, 3), k_shot=10),
}

PEAK_MATMUL_SIZE = 2048


def add_arguments(parser):
    parser.add_argument(
        "--config",
        default="demo",
        choices=sorted(CONFIGURATIONS),
        help="named configuration of the step (default: demo)",
    )
    parser.add_argument("--repeats", type=int, default=20, help="timed calls of each part")
    parser.add_argument("--baseline", help="git revision to time the step against (A/B, alternating)")
    parser.add_argument("--rounds", type=int, default=8, help="A/B rounds with --baseline")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="environment of both A/B workers"
    )
    parser.add_argument(
        "--baseline-env", action="append", default=[], metavar="KEY=VALUE", help="environment of the baseline worker"
    )


def build_learner(name, seed=0):
    """The configuration's compiled `BootstrappedLearner` (beta1 = beta2 = beta3 = 1, Adam 1e-3)."""
    configuration = CONFIGURATIONS[name]
    keras.utils.set_random_seed(seed)
    model = BootstrappedLearner(
        n_way=configuration["spec"]["n_way"], beta1=1.0, beta2=1.0, beta3=1.0, **configuration["learner"]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def random_batch(name, seed=0):
    """A fixed random training batch of the configuration: images in [0, 1), labels in [0, N)."""
    configuration = CONFIGURATIONS[name]
    spec = EpisodeSpec(**configuration["spec"])
    rng = np.random.default_rng(seed)
    batch_size = configuration["batch_size"]

    def images(length):
        return tf.constant(rng.random((batch_size, length) + configuration["image_shape"], dtype=np.float32))

    def labels(length):
        return tf.constant(rng.integers(0, spec.n_way, (batch_size, length), dtype=np.int32))

    return {
        "support_images": images(spec.support_length),
        "support_labels": labels(spec.support_length),
        "extra_images": images(spec.extra_length),
        "extra_labels": labels(spec.extra_length),
        "query_images": images(spec.n_queries),
        "query_labels": labels(spec.n_queries),
    }


def compiled_train_step(model, batch):
    """`model.train_step` as one `tf.function`, built and traced on `batch`."""
    model(batch)
    model.optimizer.build(model.trainable_variables)
    step = tf.function(model.train_step)
    step(batch)
    return step


def _conv4_flops(image_shape, channels):
    """Forward and backward multiply-adds x 2 of Conv-4 on one image (no input gradient for the image)."""
    height, width, in_channels = image_shape
    forward = backward = 0
    for block in range(4):
        layer = 2 * height * width * channels * 9 * in_channels
        forward += layer
        backward += layer if block == 0 else 2 * layer
        height, width, in_channels = height // 2, width // 2, channels
    return forward + backward


def step_flops(name):
    """Multiply-adds x 2 of one training step of the configuration, forward and backward.

    Counted: every convolution (filter and input gradients, none for the images), every dense
    layer, and the SRWM recurrence as its matrix-vector products (per step and head: W x for the
    outputs, W q and W k for the update's targets, the rank-one update, each of width 3E + 4;
    backward twice the forward). Elementwise work (normalisation, pooling, softmax, the optimizer)
    is not counted.
    """
    configuration = CONFIGURATIONS[name]
    spec = EpisodeSpec(**configuration["spec"])
    learner = configuration["learner"]
    batch = configuration["batch_size"]
    images = batch * (spec.support_length + spec.extra_length + spec.n_queries)
    backbone = images * _conv4_flops(configuration["image_shape"], learner["backbone_channels"])
    height, width = configuration["image_shape"][:2]
    features = (height // 16) * (width // 16) * learner["backbone_channels"]
    hidden, heads = learner["hidden_size"], learner["num_heads"]
    head_dim = hidden // heads
    # Sequence steps: support and extras once, each query from two states (student and teacher).
    tokens = batch * (spec.support_length + spec.extra_length + 2 * spec.n_queries)
    block = 2 * hidden * learner["ff_dim"] + heads * 4 * head_dim * (3 * head_dim + 4)
    token_macs = (features + spec.n_way) * hidden + learner["num_layers"] * block
    forward_macs = tokens * token_macs + 2 * batch * spec.n_queries * hidden * spec.n_way
    return float(backbone + 3 * 2 * forward_macs)


def matmul_peak_gflops(size=PEAK_MATMUL_SIZE, repeats=10):
    """Float32 GFLOP/s of a `size` x `size` matmul (median), the machine's practical peak."""
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    milliseconds = time_call(lambda: float(matmul()), repeats)
    return 2 * size**3 / (milliseconds * 1e-3) / 1e9


def cpu_settings():
    """The CPU model, its widest vector extension, and TensorFlow's oneDNN, thread and XLA settings."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            first_cpu = cpuinfo.read().split("\n\n")[0]
        fields = {
            key.strip(): value.strip() for key, _, value in (line.partition(":") for line in first_cpu.splitlines())
        }
        model = fields.get("model name", model)
        flags = set(fields.get("flags", "").split())
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "vector_extension": next((name.upper() for name in ("avx512f", "avx2", "avx") if name in flags), "unknown"),
        "onednn": runtime.onednn_enabled(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "all"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default",
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads() or "default",
        "xla": "off (the fused SRWM op has no XLA lowering; an XLA-compiled backbone measured slower)",
        "tensorflow": tf.__version__,
    }


def _part_functions(model, batch):
    """Compiled functions for the backbone, the sequence stack + loss, and the optimizer update."""
    backbone_variables = model.learner.backbone.trainable_variables
    sequence_variables = [v for v in model.trainable_variables if not any(v is b for b in backbone_variables)]
    features = [tf.stop_gradient(piece) for piece in model.encode_episodes(batch, training=True)]
    upstream = [tf.random.stateless_normal(tf.shape(piece), [1, 2]) for piece in features]

    @tf.function
    def backbone():
        with tf.GradientTape() as tape:
            pieces = model.encode_episodes(batch, training=True)
            loss = tf.add_n([tf.reduce_sum(piece * weight) for piece, weight in zip(pieces, upstream)])
        return tape.gradient(loss, backbone_variables)

    @tf.function
    def sequence():
        with tf.GradientTape() as tape:
            student, teacher = model.logits_from_features(*features, batch, training=True)
            loss = tf.reduce_sum(student) + tf.reduce_sum(teacher)
        return tape.gradient(loss, sequence_variables)

    gradients = [tf.zeros_like(variable) for variable in model.trainable_variables]

    @tf.function
    def optimizer():
        model.optimizer.apply(gradients, model.trainable_variables)
        return model.optimizer.iterations

    return backbone, sequence, optimizer


def _input_ms(name, repeats):
    """Milliseconds per batch of the in-graph episode sampler on synthetic data of the image shape."""
    configuration = CONFIGURATIONS[name]
    spec = EpisodeSpec(**configuration["spec"])
    height, width, channels = configuration["image_shape"]
    source = load_source("synthetic", num_classes=4 * spec.n_way * 5, image_size=height, channels=channels)
    iterator = iter(episode_dataset(source.split("train"), spec, configuration["batch_size"], seed=0))
    return time_call(lambda: next(iterator)["query_labels"].numpy(), repeats)


def _fetch(values):
    return [value.numpy() for value in tf.nest.flatten(values) if value is not None]


def run(args):
    check_integer("repeats", args.repeats)
    check_integer("rounds", args.rounds)
    model = build_learner(args.config)
    batch = random_batch(args.config)
    step = compiled_train_step(model, batch)
    backbone, sequence, optimizer = _part_functions(model, batch)
    figures = {"config": args.config}
    figures["step_ms"] = time_call(lambda: float(step(batch)["loss"]), args.repeats)
    figures["input_ms"] = _input_ms(args.config, args.repeats)
    figures["backbone_ms"] = time_call(lambda: _fetch(backbone()), args.repeats)
    figures["sequence_ms"] = time_call(lambda: _fetch(sequence()), args.repeats)
    figures["optimizer_ms"] = time_call(lambda: _fetch(optimizer()), args.repeats)
    figures["rest_ms"] = figures["step_ms"] - figures["backbone_ms"] - figures["sequence_ms"] - figures["optimizer_ms"]
    flops = step_flops(args.config)
    peak = matmul_peak_gflops()
    figures["step_gflop"] = flops / 1e9
    figures["step_gflops_per_s"] = flops / (figures["step_ms"] * 1e-3) / 1e9
    figures["matmul_peak_gflops_per_s"] = peak
    figures["flop_bound_ms"] = flops / (peak * 1e9) * 1e3
    figures["step_over_bound"] = figures["step_ms"] / figures["flop_bound_ms"]
    figures["settings"] = cpu_settings()
    if args.baseline:
        from kerasrwm.benchmarks import train_ab

        figures["ab"] = train_ab.compare(
            CONFIGURATIONS[args.config], args.baseline, args.rounds, args.repeats, args.env, args.baseline_env
        )
    return figures
