"""Training protocols: one `Task` per value of the configuration key `protocol`.

| protocol | task | learner |
|---|---|---|
| `bootstrap` | `BootstrapTask` | `BootstrappedLearner`: K-shot episodes, bootstrapped loss |
| `delayed_label` | `DelayedLabelTask` | `DelayedLabelLearner`: labels one step late, scored at every step |
"""

from kerasrwm.training.tasks.bootstrap import BootstrapTask
from kerasrwm.training.tasks.delayed_label import DelayedLabelTask
from kerasrwm.training.tasks.task import ARCHITECTURE_KEYS
from kerasrwm.training.tasks.task import Task
from kerasrwm.training.tasks.task import episode_spec
from kerasrwm.validation import check_choice

TASKS = {task.name: task for task in (BootstrapTask(), DelayedLabelTask())}


def get_task(protocol):
    """The `Task` named `protocol`; `ValueError` naming `protocol` if there is none."""
    return TASKS[check_choice("protocol", protocol, tuple(TASKS))]
