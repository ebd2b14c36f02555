"""`DelayedLabelTask`: labelled sequences where step t sees the label of step t-1."""

from kerasrwm.data import delayed_label_dataset
from kerasrwm.data.delayed_label_episodes import as_labelled_sequence
from kerasrwm.models import DelayedLabelLearner
from kerasrwm.training.tasks.task import Task

DEFAULT_OCCURRENCES = 5
"""At most this many `accuracy_occurrence_k` metrics (fewer when K is smaller)."""


class DelayedLabelTask(Task):
    """`DelayedLabelLearner` on sequences of N·K steps, every class K times, scored at every step.

    Irie, Schlag, Csordás, Schmidhuber, "A Modern Self-Referential Weight Matrix That Learns to
    Modify Itself", ICML 2022. Validation sequences are the supports of the validation episodes.
    """

    name = "delayed_label"
    learner_class = DelayedLabelLearner
    monitor = "val_accuracy"
    signature = "predict_sequence(images, labels) -> per-step logits"

    def check_config(self, config):
        if config["diagnostics_every"]:
            raise ValueError(
                f"`diagnostics_every` reads the bootstrapped loss's terms; received "
                f"diagnostics_every={config['diagnostics_every']} with protocol={self.name!r}."
            )
        if config["k_test_sweep"]:
            raise ValueError(
                f"`k_test_sweep` needs an episodic K-shot learner; received k_test_sweep={config['k_test_sweep']!r} "
                f"with protocol={self.name!r}."
            )

    def learner_arguments(self, config):
        """Accuracy metrics for the occurrences a sequence holds: every class appears K times."""
        return {"num_occurrences": min(DEFAULT_OCCURRENCES, config["k_shot"])}

    def training_stream(self, config, store, batch_size, seed, start_batch):
        return delayed_label_dataset(store, config["n_way"], config["k_shot"], batch_size, seed, start_batch)

    def as_learner_inputs(self, episodes):
        return episodes.map(as_labelled_sequence)
