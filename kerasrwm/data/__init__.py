"""Episodic few-shot data: sources with fixed class splits and the in-graph episode sampler.

```python
source = kerasrwm.data.load_source("npz:omniglot_28.npz", split_scheme="vinyals", rotations=True)
spec = kerasrwm.data.EpisodeSpec(n_way=5, k_shot=5, k_extra=5)
train = kerasrwm.data.episode_dataset(source.split("train"), spec, batch_size=16, seed=0)
test = kerasrwm.data.evaluation_dataset(source.split("test"), spec, 16, runs=10, episodes=640, seed=0)
```
"""

from kerasrwm.data.class_store import ClassStore
from kerasrwm.data.delayed_label_episodes import delayed_label_dataset
from kerasrwm.data.episode_sampler import episode_dataset
from kerasrwm.data.episode_spec import EpisodeSpec
from kerasrwm.data.evaluation_episodes import EvaluationEpisodes
from kerasrwm.data.evaluation_episodes import evaluation_dataset
from kerasrwm.data.load_source import load_source
from kerasrwm.data.source import Source
from kerasrwm.data.sources.arrays import from_arrays
from kerasrwm.data.sources.arrays import load_npz
from kerasrwm.data.sources.image_folder import load_image_folder
from kerasrwm.data.sources.synthetic import load_synthetic
from kerasrwm.data.sources.tfds import load_tfds
