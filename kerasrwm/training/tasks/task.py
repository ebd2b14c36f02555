"""`Task`: what a training protocol decides, behind one object per protocol."""

from kerasrwm.data import EpisodeSpec
from kerasrwm.data import evaluation_dataset
from kerasrwm.training.export import export_learner

# Configuration keys that every protocol passes to its learner (`SequenceLearner` arguments).
ARCHITECTURE_KEYS = (
    "n_way",
    "sequence_layer",
    "backbone",
    "backbone_channels",
    "vision_dropout",
    "hidden_size",
    "num_layers",
    "num_heads",
    "ff_dim",
    "dropout",
    "unknown_label",
    "implementation",
    "hand_off_gradient",
)


def episode_spec(config, k_shot=None, k_extra=None):
    """The `EpisodeSpec` of `config`, with `k_shot` or `k_extra` replaced when given."""
    return EpisodeSpec(
        config["n_way"],
        config["k_shot"] if k_shot is None else k_shot,
        config["k_extra"] if k_extra is None else k_extra,
        config["n_queries"],
    )


class Task:
    """A training protocol: its learner, the data it trains and validates on, how it is scored and exported.

    The run (`kerasrwm.training.experiment`), evaluation, tuning and export ask the task of a
    configuration (`kerasrwm.training.tasks.get_task(config["protocol"])`) instead of testing the
    protocol's name. A subclass sets the class attributes and implements `training_stream`.

    Attributes:
        name: the value of the configuration key `protocol`.
        learner_class: the `keras.Model` trained under this protocol.
        config_keys: `{key: ConfigKey(default, help, check)}` of the configuration keys only this protocol reads.
        loss_keys: the configuration keys passed to the learner besides `ARCHITECTURE_KEYS`.
        monitor: the epoch-end log whose maximum picks a run's best model.
        sweeps_k_test: whether the learner is an episodic K-shot learner that a K_test sweep
            evaluates (`kerasrwm evaluate`, `k_test_sweep`).
        signature: the exported SavedModel's serving signature, in words.
    """

    name = None
    learner_class = None
    config_keys = {}
    loss_keys = ()
    monitor = None
    sweeps_k_test = False
    signature = None

    def check_config(self, config):
        """Raises `ValueError` naming a key whose value this protocol cannot honour."""

    def learner(self, config):
        """The (uncompiled) learner that `config` describes."""
        arguments = {key: config[key] for key in (*ARCHITECTURE_KEYS, *self.loss_keys)}
        return self.learner_class(**arguments, **self.learner_arguments(config))

    def learner_arguments(self, config):
        """Learner arguments this protocol derives from `config` (none by default)."""
        return {}

    def training_stream(self, config, store, batch_size, seed, start_batch):
        """Infinite training batches of `batch_size` from `store`; batch `i` depends only on (`seed`, `start_batch + i`)."""
        raise NotImplementedError

    def validation_batches(self, config, store, batches):
        """`batches` fixed batches of `config["batch_size"]` validation episodes, at `validation_k_shot`, cached."""
        spec = episode_spec(config, k_shot=config["validation_k_shot"], k_extra=0)
        size = config["batch_size"]
        episodes = evaluation_dataset(store, spec, size, 1, batches * size, config["seed"])
        return self.as_learner_inputs(episodes).cache()

    def as_learner_inputs(self, episodes):
        """Evaluation episodes (`kerasrwm.data.evaluation_dataset`) as batches of this protocol's learner."""
        return episodes

    def evaluation_terms(self, model, batch):
        """The loss terms and accuracies of `model` on one batch, as a dict of scalars."""
        return model.compute_loss_terms(batch, training=False)

    def export(self, model, path, image_shape):
        """Writes `model` as a portable SavedModel with this protocol's signature `signature`."""
        export_learner(model, path, image_shape)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"
