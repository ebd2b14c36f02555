"""`EvaluationEpisodes`: a fixed, seeded set of runs x episodes for reproducible evaluation."""

import tensorflow as tf

from kerasrwm.data.episode_sampler import EVALUATION_STREAM
from kerasrwm.data.episode_sampler import episode_tables
from kerasrwm.data.episode_sampler import fold_in
from kerasrwm.data.episode_sampler import sample_episodes
from kerasrwm.data.episode_sampler import stream_key
from kerasrwm.data.episode_sampler import with_pipeline_options
from kerasrwm.validation import check_integer


class EvaluationEpisodes:
    """`runs` x `episodes` fixed episodes, the same in every process and on every machine.

    Episode `e` of run `r` is a pure function of `(seed, r, e)`, drawn on its
    own key, so it does not depend on `batch_size`. For one seed, the classes,
    the queries and the order of each class's images do not depend on
    `k_shot`: the support of a K-shot episode holds the support of the same
    episode at any smaller K (a paired K_test sweep). The evaluation stream
    never overlaps the training stream of the same seed.

    Args:
        store: a `ClassStore` (usually the validation or test split).
        spec: an `EpisodeSpec`; its `k_shot` may differ from training.
        batch_size: episodes per batch B; must divide `episodes`.
        runs: number of runs (accuracy is reported as mean and std over runs).
        episodes: episodes per run.
        seed: non-negative int.

    Example:

    >>> evaluation = EvaluationEpisodes(test_store, EpisodeSpec(5, 15), 32, runs=10, episodes=320, seed=0)
    >>> accuracies = [model.evaluate(run, return_dict=True)["student_accuracy"] for run in evaluation]
    """

    def __init__(self, store, spec, batch_size, runs, episodes, seed):
        self.spec = spec
        self.batch_size = check_integer("batch_size", batch_size, 1)
        self.runs = check_integer("runs", runs, 1)
        self.episodes = check_integer("episodes", episodes, 1)
        if self.episodes % self.batch_size:
            raise ValueError(
                f"`episodes` must be a multiple of `batch_size` ({self.batch_size}) so that every "
                f"batch has a static size; received episodes={episodes!r}."
            )
        self.seed = seed
        self._key = stream_key(seed, EVALUATION_STREAM)
        self._tables = episode_tables(store.for_spec(spec))

    def __len__(self):
        return self.runs

    def __iter__(self):
        return (self.run(index) for index in range(self.runs))

    def run(self, index):
        """The finite dataset of run `index`: `episodes / batch_size` batches (same dicts as `episode_dataset`)."""
        if not 0 <= index < self.runs:
            raise ValueError(f"`index` must be in [0, {self.runs}); received index={index!r}.")
        return self._run_batches(index)

    def dataset(self):
        """All runs, run after run, as one finite dataset of `runs * episodes / batch_size` batches."""
        # int32 run numbers: the keys `run(index)` folds in from a Python int.
        batches = tf.data.Dataset.range(self.runs, output_type=tf.int32).flat_map(self._run_batches)
        batches = batches.apply(tf.data.experimental.assert_cardinality(self.runs * self.episodes // self.batch_size))
        return with_pipeline_options(batches)

    def _run_batches(self, index):
        run_key = fold_in(self._key, index)

        def episode(episode_index):
            batch = sample_episodes(self._tables, self.spec, fold_in(run_key, episode_index), 1)
            return {name: tensor[0] for name, tensor in batch.items()}

        episodes = tf.data.Dataset.range(self.episodes).map(episode, num_parallel_calls=tf.data.AUTOTUNE)
        return with_pipeline_options(episodes.batch(self.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


def evaluation_dataset(store, spec, batch_size, runs, episodes, seed):
    """The `EvaluationEpisodes` of these arguments as one finite `tf.data.Dataset`, run after run.

    Usable wherever Keras takes data (`evaluate`, `fit(validation_data=...)`); for one accuracy
    per run, iterate `EvaluationEpisodes(store, spec, batch_size, runs, episodes, seed)`.
    """
    return EvaluationEpisodes(store, spec, batch_size, runs, episodes, seed).dataset()
