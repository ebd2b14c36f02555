"""Delayed-label episodes: one labelled sequence per episode, scored at every step.

In the delayed-label protocol (Irie et al. 2022, the authors' `main_few_shot_delayed_*`
scripts) step t shows image t with the label of step t-1, and the model predicts the label of
every image before it is revealed. The layout here is the plain labelled sequence
`{"images": [B, L, h, w, c], "labels": [B, L]}` in time order; the one-step delay is applied by
`kerasrwm.models.DelayedLabelLearner`, so a served model takes the same labelled sequence.
"""

from kerasrwm.data.episode_sampler import episode_dataset
from kerasrwm.data.episode_spec import EpisodeSpec


def as_labelled_sequence(batch):
    """An episode batch of `episode_dataset` → `{"images", "labels"}`: its N·K support, in order.

    The support is already interleaved across classes at random, so a class's k-th example
    may come at any position.
    """
    return {"images": batch["support_images"], "labels": batch["support_labels"]}


def delayed_label_dataset(store, n_way, k_shot, batch_size, seed, start_batch=0):
    """An infinite stream of `{"images" [B, N*K, h, w, c], "labels" [B, N*K]}` sequences.

    Drawn by the in-graph sampler (`kerasrwm.data.episode_dataset`), so batch `i` is a pure
    function of `(seed, i)` and a resumed run continues the same stream.

    Args:
        store: a `ClassStore`.
        n_way: classes N per sequence.
        k_shot: examples K of every class in a sequence (length N·K).
        batch_size: sequences per batch B.
        seed, start_batch: as in `episode_dataset`.
    """
    spec = EpisodeSpec(n_way, k_shot, k_extra=0, n_queries=1)
    return episode_dataset(store, spec, batch_size, seed, start_batch).map(as_labelled_sequence)
