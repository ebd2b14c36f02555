"""KerasTuner grid search over the distillation weight beta2, the extra shots K' and, optionally, the step
at which distillation starts (`beta2_start_step` of the distillation schedule).

beta2 and its start step only shape the loss, so `BootstrapHyperModel.build` declares them and passes them
to the learner. K' changes the episodes themselves, so `BootstrapHyperModel.fit` declares it and builds
that trial's training stream. Every trial is scored on the same fixed validation episodes (at
`validation_k_shot`, without extras) by its best epoch's `val_student_accuracy`.

Layout of `output_dir`: `search.json` (the settings; a rerun must match them), `kerastuner/`
(KerasTuner's project: the oracle and one `trial_<id>/` folder per trial), `logs/` (TensorBoard,
one folder per trial with its hyper-parameters) and `best.json` (the best trial so far).
Rerunning `tune` on the same `output_dir` resumes the search: finished trials are kept, an
interrupted trial runs again, and a larger `max_trials` extends the search.
"""

import glob
import json
import numbers
import os

import keras
import keras_tuner as kt

from kerasrwm.data import load_source
from kerasrwm.training.atomic_files import check_writable
from kerasrwm.training.atomic_files import write_json_atomically
from kerasrwm.training.experiment import build_learner
from kerasrwm.training.experiment import training_stream
from kerasrwm.training.experiment import validation_episodes
from kerasrwm.training.run_lock import RunLock
from kerasrwm.training.tasks import TASKS
from kerasrwm.training.tasks import episode_spec
from kerasrwm.training.tasks import get_task
from kerasrwm.validation import check_integer

PROJECT_NAME = "kerastuner"
TUNED_KEYS = ("beta2", "k_extra")
# The protocols whose configuration has the tuned keys (the bootstrap protocol); a search is scored
# by their metric that picks the best model.
TUNABLE = tuple(name for name, task in TASKS.items() if set(TUNED_KEYS) <= set(task.config_keys))
OBJECTIVE = TASKS[TUNABLE[0]].monitor


def check_values(name, values, value_type):
    """Returns `values` as a list of distinct non-negative `value_type` numbers.

    Args:
        name: the argument name used in error messages.
        values: a non-empty sequence of numbers.
        value_type: `float` (integers are converted) or `int`.

    Raises:
        ValueError: naming `name`, if `values` is empty, holds a non-number, a negative
            number, a non-integer where `value_type` is `int`, or a repeated value.
    """
    values = list(values)
    kind = numbers.Integral if value_type is int else numbers.Real
    if not values or any(isinstance(v, bool) or not isinstance(v, kind) or v < 0 for v in values):
        raise ValueError(f"`{name}` must be a non-empty list of {value_type.__name__}s >= 0; received {values!r}.")
    values = [value_type(v) for v in values]
    if len(set(values)) < len(values):
        raise ValueError(f"`{name}` must not repeat a value; received {values!r}.")
    return values


class BootstrapHyperModel(kt.HyperModel):
    """The bootstrapped learner of a configuration, with beta2 and K' left to the tuner.

    Args:
        config: a full configuration (`kerasrwm.training.configuration.make_config`); every
            setting but `beta2` and `k_extra` is the same in every trial.
        beta2_values: the distillation weights to try (numbers >= 0).
        k_extra_values: the extra shots K' per class to try (integers >= 0).
        beta2_start_values: the `beta2_start_step` values to try (integers >= 0), or None to
            use the configuration's in every trial (not a hyper-parameter then).

    Example (`tune` runs such a search as a resumable grid):

    >>> config = make_config({"steps": 400})
    >>> source = load_source(config["data"])
    >>> hypermodel = BootstrapHyperModel(config, [0, 1, 10], [1, 5])
    >>> tuner = kt.RandomSearch(hypermodel, objective=kt.Objective(OBJECTIVE, "max"), max_trials=4)
    >>> tuner.search(source.split("train"), validation_data=validation_episodes(config, source.split("validation")))
    """

    def __init__(self, config, beta2_values, k_extra_values, beta2_start_values=None):
        super().__init__(name="bootstrapped_learner")
        if not set(TUNED_KEYS) <= set(get_task(config["protocol"]).config_keys):
            raise ValueError(
                f"`tune` searches beta2 and K' of a protocol in {TUNABLE}; received protocol={config['protocol']!r}."
            )
        self.config = config
        self.beta2_values = check_values("beta2_values", beta2_values, float)
        self.k_extra_values = check_values("k_extra_values", k_extra_values, int)
        self.beta2_start_values = (
            None if beta2_start_values is None else check_values("beta2_start_values", beta2_start_values, int)
        )

    def build(self, hp):
        """A compiled learner with this trial's beta2 (and start step), initialised from the configuration's seed."""
        trial = {"beta2": hp.Choice("beta2", self.beta2_values)}
        if self.beta2_start_values is not None:
            trial["beta2_start_step"] = hp.Choice("beta2_start_step", self.beta2_start_values)
        keras.utils.set_random_seed(self.config["seed"])
        return build_learner({**self.config, **trial})

    def fit(self, hp, model, train_store, **kwargs):
        """Trains `model` for the configured steps on episodes with this trial's K'.

        Args:
            hp: the trial's `HyperParameters`.
            model: the learner returned by `build`.
            train_store: the training `ClassStore`.
            **kwargs: further `model.fit` arguments (`validation_data`, `callbacks`, `verbose`).

        Returns:
            The `History` of `model.fit`.
        """
        config = {**self.config, "k_extra": hp.Choice("k_extra", self.k_extra_values)}
        episodes = training_stream(config, train_store)
        # Built before `fit` so that KerasTuner can save its weights at the first epoch end.
        model.build({key: tuple(spec.shape) for key, spec in episodes.element_spec.items()})
        return model.fit(
            episodes,
            epochs=config["steps"] // config["steps_per_epoch"],
            steps_per_epoch=config["steps_per_epoch"],
            **kwargs,
        )


class GridOracle(kt.Oracle):
    """Tries the combinations of a fixed grid in order, skipping those that already have a trial.

    `kt.GridSearch` (KerasTuner 1.4.8) keeps its place in the grid only in memory, so a search
    reloaded from its directory stops at once; this oracle derives the next combination from the
    recorded trials, so a reloaded search carries on. An interrupted trial is rerun first (by
    `kt.Oracle` itself).

    Args:
        grid: the hyper-parameter values of each trial, as a list of dicts, in trial order.
        **kwargs: `kt.Oracle` arguments (`objective`, `max_trials`, ...).
    """

    def __init__(self, grid, **kwargs):
        super().__init__(**kwargs)
        self.grid = grid

    def populate_space(self, trial_id):
        tried = [trial.hyperparameters.values for trial in self.trials.values()]
        for values in self.grid:
            if values not in tried:
                return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": dict(values)}
        return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}


def _check_k_extra(config, train_store, k_extra_values):
    """Raises a `ValueError` naming `k_extra_values` if its largest K' does not fit the classes."""
    train_store.for_spec(episode_spec(config, k_extra=0))  # errors of n_way or k_shot name them
    largest = max(k_extra_values)
    try:
        train_store.for_spec(episode_spec(config, k_extra=largest))
    except ValueError as error:
        raise ValueError(
            f"`k_extra_values` holds k_extra={largest}, more extra shots than the training classes allow: {error}"
        ) from error


def _search_settings(settings):
    """`settings` as JSON data, without the configuration's keys that the tuner sets: `beta2`, `k_extra` and,
    when it is searched, `beta2_start_step`."""
    settings = json.loads(json.dumps(settings))
    tuned = TUNED_KEYS + (("beta2_start_step",) if settings.get("beta2_start_values") is not None else ())
    settings["config"] = {key: value for key, value in settings["config"].items() if key not in tuned}
    return settings


def _claim_directory(output_dir, settings):
    """Writes `search.json`, or checks that an earlier search in `output_dir` used `settings`.

    The configuration's own `beta2` and `k_extra` are never used by a search, so they are neither
    written nor compared (a search.json that holds them still resumes).
    """
    path = os.path.join(output_dir, "search.json")
    settings = _search_settings(settings)
    if os.path.exists(path):
        with open(path) as file:
            if _search_settings(json.load(file)) != settings:
                raise ValueError(
                    f"`output_dir` {output_dir!r} holds a search with different settings; use a new "
                    "directory, or the same configuration and values to resume it."
                )
        return
    os.makedirs(output_dir, exist_ok=True)
    write_json_atomically(path, settings)


def _summary(trial):
    """A trial's id, hyper-parameter values and objective (its best epoch's; None until completed)."""
    score = None if trial.score is None else float(trial.score)
    return {"trial_id": trial.trial_id, **trial.hyperparameters.values, OBJECTIVE: score}


def trial_results(output_dir):
    """Every trial of the search in `output_dir`, read from KerasTuner's own records.

    Returns:
        A list, by trial id, of dicts with `trial_id`, `beta2`, `k_extra`,
        `val_student_accuracy` (None unless the trial completed) and `status` (e.g.
        `"COMPLETED"`, or `"RUNNING"` for a trial that was interrupted).
    """
    pattern = os.path.join(glob.escape(output_dir), PROJECT_NAME, "trial_*", "trial.json")
    trials = sorted(map(kt.engine.trial.Trial.load, glob.glob(pattern)), key=lambda trial: int(trial.trial_id))
    return [{**_summary(trial), "status": trial.status} for trial in trials]


def tune(config, beta2_values, k_extra_values, max_trials, output_dir, verbose=1, beta2_start_values=None):
    """Grid search over beta2 and K' (and the distillation start step), maximising the validation student accuracy.

    The source is loaded once; each trial builds a learner with its beta2 (same seed) and
    trains it for `config["steps"]` steps on episodes with its K'. Trials run in grid order
    (beta2 outer, then the start step, K' inner) until `max_trials` or the grid is exhausted. Rerunning on the same
    `output_dir` resumes (see the module docstring).

    Args:
        config: a full configuration (`kerasrwm.training.configuration.make_config`).
        beta2_values: distillation weights to try (numbers >= 0).
        k_extra_values: extra shots K' per class to try (integers >= 0).
        max_trials: the most trials of the whole search, finished ones included.
        output_dir: the search directory.
        verbose: 0 (silent), 1 (KerasTuner's trial summaries and Keras progress bars) or 2.
        beta2_start_values: `beta2_start_step` values to try (integers >= 0), or None to keep
            the configuration's.

    Returns:
        The best trial as a dict with `trial_id`, `beta2`, `k_extra` (and `beta2_start_step` when
        searched) and `val_student_accuracy`, also written to `output_dir/best.json`.

    Raises:
        ValueError: on an empty or invalid value list, a non-positive `max_trials`, a K' too
            large for the training classes, or an `output_dir` holding another search.
        kerasrwm.training.atomic_files.WriteError: (a `ValueError`) before any work, if `output_dir`
            cannot be written (read-only, or a file).
        RuntimeError: as soon as a trial fails (with its traceback), or if no trial completed.
    """
    max_trials = check_integer("max_trials", max_trials)
    check_writable(output_dir, "`output_dir`")
    hypermodel = BootstrapHyperModel(config, beta2_values, k_extra_values, beta2_start_values)
    source = load_source(config["data"], **config["data_options"])
    train_store = source.split("train")
    _check_k_extra(config, train_store, hypermodel.k_extra_values)
    validation = validation_episodes(config, source.split("validation"))
    settings = {"config": config, "beta2_values": hypermodel.beta2_values, "k_extra_values": hypermodel.k_extra_values}
    starts = hypermodel.beta2_start_values
    if starts is not None:
        settings["beta2_start_values"] = starts
    _claim_directory(output_dir, settings)
    with RunLock(output_dir):  # one search per directory, as one trainer per run
        grid = [
            {"beta2": beta2, **({} if start is None else {"beta2_start_step": start}), "k_extra": k_extra}
            for beta2 in hypermodel.beta2_values
            for start in (starts or [None])
            for k_extra in hypermodel.k_extra_values
        ]
        oracle = GridOracle(
            grid,
            objective=kt.Objective(OBJECTIVE, direction="max"),
            max_trials=max_trials,
            max_consecutive_failed_trials=1,  # a failing trial is a configuration error: stop at once
        )
        tuner = kt.Tuner(
            oracle=oracle, hypermodel=hypermodel, directory=output_dir, project_name=PROJECT_NAME, overwrite=False
        )
        tuner.search(
            train_store,
            validation_data=validation,
            callbacks=[keras.callbacks.TensorBoard(os.path.join(output_dir, "logs"))],
            verbose=verbose,
        )
        completed = [
            trial for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED" and trial.score is not None
        ]
        if not completed:
            raise RuntimeError(f"No trial of the search in {output_dir!r} completed; see `trial_results`.")
        # Highest score; ties go to the earliest trial, so the answer does not change on a rerun.
        best = _summary(min(completed, key=lambda trial: (-trial.score, int(trial.trial_id))))
        write_json_atomically(os.path.join(output_dir, "best.json"), best)
        return best
