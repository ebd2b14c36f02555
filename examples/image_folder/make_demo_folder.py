"""Writes a small image-folder dataset (root/<class>/<n>.png) from Omniglot, to try the folder source.

Usage: python examples/image_folder/make_demo_folder.py ../shared/data/omniglot_28.npz data/omniglot_folder [CLASSES]
"""

import os
import sys

import numpy as np
from PIL import Image

if __name__ == "__main__":
    npz_path, root = sys.argv[1], sys.argv[2]
    num_classes = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    data = np.load(npz_path)
    images, labels, names = data["images"], data["labels"], data["class_names"]
    for class_id in range(num_classes):
        folder = os.path.join(root, names[class_id].replace("/", "_"))
        os.makedirs(folder, exist_ok=True)
        for index, image in enumerate(images[labels == class_id]):
            Image.fromarray(image).save(os.path.join(folder, f"{index:02d}.png"))
    print(f"Wrote {num_classes} classes under {root}")
