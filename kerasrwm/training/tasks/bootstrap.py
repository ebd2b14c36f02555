"""`BootstrapTask`: K-shot episodes with extras, trained with the bootstrapped loss."""

import warnings

from kerasrwm.data import episode_dataset
from kerasrwm.models import BootstrappedLearner
from kerasrwm.training.tasks.task import Task
from kerasrwm.training.tasks.task import episode_spec
from kerasrwm.validation import check_integer


class BootstrapTask(Task):
    """`BootstrappedLearner` on episodes of N·K support, N·K' extra and Q query examples.

    Irie & Schmidhuber, "Accelerating Neural Self-Improvement via Bootstrapping", 2023.
    """

    name = "bootstrap"
    learner_class = BootstrappedLearner
    config_keys = {
        "k_extra": (5, "extra examples per class (K') that the teacher reads after the support"),
        "n_queries": (1, "query images per episode, each scored from the state after the support"),
        "k_test_sweep": ([], "comma-separated K_test values scored on validation episodes at every epoch end"),
        "beta1": (1.0, "weight of the student's cross-entropy (after N*K examples)"),
        "beta2": (1.0, "weight of the distillation from the teacher to the student (0: no bootstrapping)"),
        "beta3": (1.0, "weight of the teacher's cross-entropy (after N*(K+K') examples)"),
        "distill": ("kl", "distillation term: kl (the authors' code) or ce (soft-target cross-entropy, Eq. 5)"),
        "temperature": (1.0, "softmax temperature of the distillation term (> 0)"),
        "beta2_start_step": (0, "steps with beta2 held at 0 before the distillation starts (the schedule)"),
        "beta2_ramp_steps": (0, "steps over which beta2 then rises linearly to its value (0: at once)"),
        "diagnostics_every": (
            0,
            "steps between bootstrapping diagnostics (per-term gradient norms, their cosine, the label share of "
            "the Adam step) in the log and TensorBoard; 0: off",
        ),
    }
    loss_keys = ("beta1", "beta2", "beta3", "distill", "temperature", "beta2_start_step", "beta2_ramp_steps")
    monitor = "val_student_accuracy"
    sweeps_k_test = True
    signature = "adapt_and_predict(support_images, support_labels, query_images) -> logits"

    def check_config(self, config):
        for key in ("beta2_start_step", "beta2_ramp_steps", "diagnostics_every"):
            check_integer(key, config[key], minimum=0)
        if config["k_extra"] == 0 and (config["beta2"] or config["beta3"]):
            warnings.warn(
                f"With k_extra=0 the teacher reads what the student reads, so it is the student: beta2="
                f"{config['beta2']:g} weighs a distillation that is always 0, and beta3={config['beta3']:g} weighs the "
                "student's cross-entropy a second time. Set beta2 and beta3 to 0 for the plain K-shot learner.",
                UserWarning,
                stacklevel=2,
            )

    def training_stream(self, config, store, batch_size, seed, start_batch):
        return episode_dataset(store, episode_spec(config), batch_size, seed, start_batch)
