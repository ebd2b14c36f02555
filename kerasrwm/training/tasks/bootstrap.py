"""`BootstrapTask`: K-shot episodes with extras, trained with the bootstrapped loss."""

import functools
import warnings

from kerasrwm.data import episode_dataset
from kerasrwm.models import BootstrappedLearner
from kerasrwm.models.bootstrap_loss import DISTILLATIONS
from kerasrwm.training.config_key import ConfigKey
from kerasrwm.training.tasks.task import Task
from kerasrwm.training.tasks.task import episode_spec
from kerasrwm.validation import check_choice
from kerasrwm.validation import check_integer
from kerasrwm.validation import check_integer_list
from kerasrwm.validation import check_number

_non_negative_integer = functools.partial(check_integer, minimum=0)


class BootstrapTask(Task):
    """`BootstrappedLearner` on episodes of N·K support, N·K' extra and Q query examples.

    Irie & Schmidhuber, "Accelerating Neural Self-Improvement via Bootstrapping", 2023.
    """

    name = "bootstrap"
    learner_class = BootstrappedLearner
    config_keys = {
        "k_extra": ConfigKey(
            5,
            "extra examples per class (K') that the teacher reads after the support",
            _non_negative_integer,
        ),
        "n_queries": ConfigKey(
            1, "query images per episode, each scored from the state after the support", check_integer
        ),
        "k_test_sweep": ConfigKey(
            [],
            "comma-separated K_test values scored on validation episodes at every epoch end",
            check_integer_list,
        ),
        "beta1": ConfigKey(1.0, "weight of the student's cross-entropy (after N*K examples)", check_number),
        "beta2": ConfigKey(
            1.0, "weight of the distillation from the teacher to the student (0: no bootstrapping)", check_number
        ),
        "beta3": ConfigKey(1.0, "weight of the teacher's cross-entropy (after N*(K+K') examples)", check_number),
        "distill": ConfigKey(
            "kl",
            "distillation term: kl (the authors' code) or ce (soft-target cross-entropy, Eq. 5)",
            functools.partial(check_choice, choices=DISTILLATIONS),
        ),
        "temperature": ConfigKey(
            1.0, "softmax temperature of the distillation term (> 0)", functools.partial(check_number, exclusive=True)
        ),
        "beta2_start_step": ConfigKey(
            0, "steps with beta2 held at 0 before the distillation starts (the schedule)", _non_negative_integer
        ),
        "beta2_ramp_steps": ConfigKey(
            0, "steps over which beta2 then rises linearly to its value (0: at once)", _non_negative_integer
        ),
        "diagnostics_every": ConfigKey(
            0,
            "steps between bootstrapping diagnostics (per-term gradient norms, their cosine, the label share of "
            "the Adam step) in the log and TensorBoard; 0: off",
            _non_negative_integer,
        ),
    }
    loss_keys = ("beta1", "beta2", "beta3", "distill", "temperature", "beta2_start_step", "beta2_ramp_steps")
    monitor = "val_student_accuracy"
    sweeps_k_test = True
    signature = "adapt_and_predict(support_images, support_labels, query_images) -> logits"

    def check_config(self, config):
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
