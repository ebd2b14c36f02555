"""`EpisodeSpec`: the shape of one N-way K-shot episode."""

import dataclasses

from kerasrwm.validation import check_integer


@dataclasses.dataclass(frozen=True)
class EpisodeSpec:
    """How many classes, shots and queries one few-shot episode holds.

    An episode draws `n_way` classes and, from each, `k_shot` support images
    and `k_extra` extra ("future") shots. `n_queries` query images are then
    drawn from the same `n_way` classes. Support, extras and queries never
    share an image, so every class must hold at least `images_per_class`
    images.

    Args:
        n_way: number of classes N per episode, at least 2.
        k_shot: support images K per class, at least 1.
        k_extra: extra shots K' per class, shown after the support (the
            bootstrapping target); 0 disables them.
        n_queries: query images Q per episode, at least 1.

    Example:

    >>> spec = EpisodeSpec(n_way=5, k_shot=5, k_extra=5)
    >>> spec.support_length, spec.extra_length, spec.images_per_class
    (25, 25, 11)
    """

    n_way: int
    k_shot: int
    k_extra: int = 0
    n_queries: int = 1

    def __post_init__(self):
        minimums = {"n_way": 2, "k_shot": 1, "k_extra": 0, "n_queries": 1}
        for name, minimum in minimums.items():
            object.__setattr__(self, name, check_integer(name, getattr(self, name), minimum))

    @property
    def support_length(self):
        """Support images per episode, N * K."""
        return self.n_way * self.k_shot

    @property
    def extra_length(self):
        """Extra images per episode, N * K'."""
        return self.n_way * self.k_extra

    @property
    def images_per_class(self):
        """Images a class must hold: K + K' + Q (all queries may share a class)."""
        return self.k_shot + self.k_extra + self.n_queries

    def get_config(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config):
        return cls(**config)
