"""The in-graph episode sampler and the infinite training stream `episode_dataset`.

Every random draw is a stateless op seeded from a key derived from the
dataset seed and the batch (or episode) index, so a batch is a pure function
of `(seed, index)`: the stream can be resumed at any batch, split across
workers by seed, and served by tf.data service (no Python in the pipeline).
"""

import collections

import tensorflow as tf

from kerasrwm.validation import check_integer

RNG_ALGORITHM = "philox"  # pinned so that episodes do not depend on the device
TRAINING_STREAM = 0
EVALUATION_STREAM = 1

EpisodeTables = collections.namedtuple("EpisodeTables", ["flat_images", "image_shape", "index_table", "class_counts"])


def episode_tables(store):
    """The tensors of a `ClassStore` that `sample_episodes` reads.

    Returns:
        `EpisodeTables` of `flat_images` uint8 `[num_images, h * w * c]`
        (whole-row gathers are faster than gathers of 3-D images),
        `image_shape` `(h, w, c)`, `index_table` int32
        `[num_classes, max_count]` and `class_counts` int32 `[num_classes]`.
    """
    return EpisodeTables(
        tf.constant(store.images.reshape(len(store.images), -1)),
        store.image_shape,
        tf.constant(store.index_table()),
        tf.constant(store.class_counts),
    )


def stream_key(seed, stream):
    """The int64 `[2]` key of one random stream (training or evaluation) of `seed`."""
    return tf.constant([check_integer("seed", seed, 0), stream], dtype=tf.int64)


def fold_in(key, index):
    """A new key from `key` and a scalar index (a batch, run or episode number)."""
    return tf.random.experimental.stateless_fold_in(key, index, alg=RNG_ALGORITHM)


def sample_episodes(tables, spec, key, num_episodes):
    """Draws `num_episodes` episodes at once, as a pure function of `key`.

    Per episode: `n_way` distinct classes, uniformly; label `n` goes to the
    `n`-th drawn class, so labels are a random permutation of the classes.
    Per class, a random ordering of its images is cut into query candidates
    (first `n_queries`), support (next `k_shot`) and extras (next `k_extra`),
    so no image appears twice. Support and extras are each shuffled across
    classes. Query `j` takes a uniformly drawn label and that class's `j`-th
    query candidate. Classes, queries and the ordering of a class's images
    do not depend on `k_shot`, so one key gives nested supports for
    K = 1, 2, ... (a paired K sweep).

    Args:
        tables: `EpisodeTables` of a store.
        spec: an `EpisodeSpec`; the store must satisfy it (`store.for_spec`).
        key: int64 `[2]` stateless seed.
        num_episodes: static number of episodes E.

    Returns:
        dict of `support_images` float32 `[E, N*K, h, w, c]` in [0, 1],
        `support_labels` int32 `[E, N*K]`, `extra_images` `[E, N*K', h, w, c]`,
        `extra_labels` `[E, N*K']`, `query_images` `[E, Q, h, w, c]` and
        `query_labels` `[E, Q]`.
    """
    n_way, k_shot, n_queries = spec.n_way, spec.k_shot, spec.n_queries
    class_key, order_key, image_key, query_key, support_key, extra_key = tf.unstack(
        tf.random.experimental.stateless_split(key, 6, alg=RNG_ALGORITHM)
    )
    num_classes, max_count = tables.index_table.shape

    def uniform(shape, seed, dtype=tf.float32):
        return tf.random.stateless_uniform(shape, seed, dtype=dtype, alg=RNG_ALGORITHM)

    class_set = _distinct_integers(uniform([num_episodes, n_way], class_key, tf.float64), num_classes)
    classes = tf.gather(class_set, tf.argsort(uniform([num_episodes, n_way], order_key), stable=True), batch_dims=1)
    counts = tf.gather(tables.class_counts, classes)
    image_scores = uniform([num_episodes, n_way, max_count], image_key)
    image_scores = tf.where(tf.range(max_count) < counts[..., tf.newaxis], image_scores, -1.0)
    _, slots = tf.math.top_k(image_scores, spec.images_per_class)
    image_ids = tf.gather(tf.gather(tables.index_table, classes), slots, batch_dims=2)

    query_labels = tf.random.stateless_uniform(
        [num_episodes, n_queries], query_key, minval=0, maxval=n_way, dtype=tf.int32, alg=RNG_ALGORITHM
    )
    query_slots = tf.stack([query_labels, tf.broadcast_to(tf.range(n_queries), query_labels.shape)], -1)
    query_ids = tf.gather_nd(image_ids[:, :, :n_queries], query_slots, batch_dims=1)
    support_ids, support_labels = _shuffled_shots(image_ids[:, :, n_queries : n_queries + k_shot], support_key)
    extra_ids, extra_labels = _shuffled_shots(image_ids[:, :, n_queries + k_shot :], extra_key)

    def images(ids):
        pixels = tf.cast(tf.gather(tables.flat_images, ids), tf.float32) * (1.0 / 255.0)
        return tf.reshape(pixels, [*ids.shape, *tables.image_shape])

    return {
        "support_images": images(support_ids),
        "support_labels": support_labels,
        "extra_images": images(extra_ids),
        "extra_labels": extra_labels,
        "query_images": images(query_ids),
        "query_labels": query_labels,
    }


def _distinct_integers(uniforms, population):
    """Per row, `n` distinct integers of `[0, population)`, a uniformly drawn set (Floyd's algorithm).

    Costs O(n^2) per row whatever the population, unlike ranking one random
    number per class. The order within a row is not uniform; shuffle it.

    Args:
        uniforms: float `[rows, n]` uniform draws in [0, 1).
        population: static int >= n.

    Returns:
        int32 `[rows, n]`.
    """
    n = uniforms.shape[1]
    tops = tf.range(population - n, population)
    draws = tf.minimum(tf.cast(uniforms * tf.cast(tops + 1, uniforms.dtype), tf.int32), tops)
    chosen = draws[:, :1]
    for i in range(1, n):
        draw = draws[:, i : i + 1]
        taken = tf.reduce_any(tf.equal(chosen, draw), axis=1, keepdims=True)
        chosen = tf.concat([chosen, tf.where(taken, tops[i], draw)], axis=1)
    return chosen


def _shuffled_shots(image_ids, key):
    """Flattens `[E, N, K]` ids of class-blocked shots into `[E, N*K]`, shuffled per episode."""
    num_episodes, n_way, shots = image_ids.shape
    labels = tf.broadcast_to(tf.range(n_way)[:, tf.newaxis], [num_episodes, n_way, shots])
    scores = tf.random.stateless_uniform([num_episodes, n_way * shots], key, alg=RNG_ALGORITHM)
    order = tf.argsort(scores, axis=1, stable=True)
    return (
        tf.gather(tf.reshape(image_ids, [num_episodes, -1]), order, batch_dims=1),
        tf.gather(tf.reshape(labels, [num_episodes, -1]), order, batch_dims=1),
    )


def episode_dataset(store, spec, batch_size, seed, start_batch=0):
    """An infinite `tf.data.Dataset` of batches of episodes, batch `i` a pure function of `(seed, i)`.

    Args:
        store: a `ClassStore` (e.g. `load_source("synthetic").split("train")`).
        spec: an `EpisodeSpec`.
        batch_size: episodes per batch B (static).
        seed: non-negative int; the same seed gives the same stream.
        start_batch: index of the first batch; `start_batch=n` yields exactly
            the batches `n, n+1, ...` of the stream from 0 (resuming a run).

    Returns:
        A dataset of dicts with fully static shapes: `support_images` float32
        `[B, N*K, h, w, c]` in [0, 1], `support_labels` int32 `[B, N*K]`,
        `extra_images` `[B, N*K', h, w, c]`, `extra_labels` `[B, N*K']`,
        `query_images` `[B, Q, h, w, c]`, `query_labels` `[B, Q]`. With
        K' = 0 the extras have a zero-length axis.

    Example:

    >>> source = load_source("synthetic")
    >>> spec = EpisodeSpec(n_way=5, k_shot=5, k_extra=5)
    >>> batches = episode_dataset(source.split("train"), spec, batch_size=16, seed=0)
    """
    batch_size = check_integer("batch_size", batch_size, 1)
    start_batch = check_integer("start_batch", start_batch, 0)
    tables = episode_tables(store.for_spec(spec))
    key = stream_key(seed, TRAINING_STREAM)
    batches = tf.data.Dataset.counter(start=start_batch).map(
        lambda index: sample_episodes(tables, spec, fold_in(key, index), batch_size),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return with_pipeline_options(batches.prefetch(tf.data.AUTOTUNE))


def with_pipeline_options(dataset):
    """`dataset` with single-threaded ops inside each map call.

    The sampler's ops are small; parallelism across batches
    (`num_parallel_calls`) uses the cores better than splitting each op
    across threads, markedly so on a busy machine.
    """
    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)
