"""`kerasrwm bench step`: training-step time of the bootstrapped learner vs its alternatives.

Three learners with the same architecture and batch, each timed as a compiled `train_step`:
- `bootstrap`: the shared-prefix bootstrapped step (support read once, student and teacher
  branch from its state);
- `plain_k_plus_k_extra`: a plain learner whose support holds all N·(K+K') examples;
- `naive_two_pass`: the bootstrapped loss computed with two independent passes (support +
  queries for the student, support + extras + queries for the teacher from scratch).
"""

import keras
import tensorflow as tf

from kerasrwm.benchmarks.timing import time_call
from kerasrwm.models import BootstrappedLearner


class NaiveTwoPassLearner(BootstrappedLearner):
    """The bootstrapped loss without the shared prefix: the N·K support is read twice."""

    def logits_from_features(self, support_features, extra_features, query_features, batch, training=None):
        _, student_state = self.learner.read(
            support_features, self.learner.label_inputs(batch["support_labels"]), training=training
        )
        _, teacher_state = self.learner.read(
            tf.concat([support_features, extra_features], axis=1),
            self.learner.label_inputs(tf.concat([batch["support_labels"], batch["extra_labels"]], axis=1)),
            training=training,
        )
        return (
            self._score_queries(query_features, student_state, training),
            self._score_queries(query_features, teacher_state, training),
        )


def add_arguments(parser):
    parser.add_argument("--batch-size", type=int, default=16, help="episodes per step (default: 16)")
    parser.add_argument("--n-way", type=int, default=5, help="classes per episode N (default: 5)")
    parser.add_argument("--k-shot", type=int, default=5, help="support examples per class K (default: 5)")
    parser.add_argument("--k-extra", type=int, default=5, help="extra examples per class K' (default: 5)")
    parser.add_argument("--image-size", type=int, default=28, help="side of the square images, pixels (default: 28)")
    parser.add_argument("--channels", type=int, default=1, help="image channels (default: 1)")
    parser.add_argument("--hidden-size", type=int, default=128, help="model width D (default: 128)")
    parser.add_argument("--num-layers", type=int, default=2, help="SRWM blocks (default: 2)")
    parser.add_argument("--num-heads", type=int, default=8, help="SRWM heads per block (default: 8)")
    parser.add_argument("--ff-dim", type=int, default=512, help="feed-forward width (default: 512)")
    parser.add_argument(
        "--implementation", default="auto", choices=["auto", "loop", "fused"], help="SRWM recurrence (default: auto)"
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed steps of each variant (default: 10)")


def _random_batch(args, support_length, extra_length):
    generator = tf.random.Generator.from_seed(0)
    image_shape = [args.image_size, args.image_size, args.channels]

    def images(length):
        return generator.uniform([args.batch_size, length] + image_shape)

    def labels(length):
        return generator.uniform([args.batch_size, length], maxval=args.n_way, dtype=tf.int32)

    return {
        "support_images": images(support_length),
        "support_labels": labels(support_length),
        "extra_images": images(extra_length),
        "extra_labels": labels(extra_length),
        "query_images": images(1),
        "query_labels": labels(1),
    }


def _time_train_step(model_class, args, batch, betas):
    model = model_class(
        n_way=args.n_way,
        backbone="conv4",
        backbone_channels=32,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        ff_dim=args.ff_dim,
        implementation=args.implementation,
        **betas,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model(batch)
    model.optimizer.build(model.trainable_variables)
    step = tf.function(model.train_step)
    return time_call(lambda: float(step(batch)["loss"]), args.repeats)


def run(args):
    nk, nk_extra = args.n_way * args.k_shot, args.n_way * args.k_extra
    bootstrap_batch = _random_batch(args, nk, nk_extra)
    plain_batch = _random_batch(args, nk + nk_extra, 0)
    bootstrap_betas = {"beta1": 1.0, "beta2": 1.0, "beta3": 1.0}
    figures = {
        "bootstrap_ms": _time_train_step(BootstrappedLearner, args, bootstrap_batch, bootstrap_betas),
        "plain_k_plus_k_extra_ms": _time_train_step(BootstrappedLearner, args, plain_batch, {"beta1": 1.0}),
        "naive_two_pass_ms": _time_train_step(NaiveTwoPassLearner, args, bootstrap_batch, bootstrap_betas),
    }
    figures["bootstrap_over_plain"] = figures["bootstrap_ms"] / figures["plain_k_plus_k_extra_ms"]
    figures["naive_over_bootstrap"] = figures["naive_two_pass_ms"] / figures["bootstrap_ms"]
    figures["settings"] = {
        key: value
        for key, value in vars(args).items()
        if key not in ("module_name", "json") and not key.endswith("_command") and key != "command"
    }
    return figures
