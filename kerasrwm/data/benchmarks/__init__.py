"""The standard few-shot benchmarks, built from a local copy of ImageNet or CIFAR-100 with the published splits.

```python
from kerasrwm.data.benchmarks import prepare_dataset

manifest = prepare_dataset("mini-imagenet", "/data/ILSVRC2012_img_train.tar", "data/mini-imagenet")
source = kerasrwm.data.load_source(manifest["load_source"])
```
"""

from kerasrwm.data.benchmarks.prepare import BENCHMARKS
from kerasrwm.data.benchmarks.prepare import expected_disk_use
from kerasrwm.data.benchmarks.prepare import prepare_dataset
