"""The output folder of `prepare_dataset`: claimed for one dataset, resumable, finished by its manifest.

`OUTPUT/.prepare.json` is written (whole) before anything else and names the dataset and how it
is being prepared; `OUTPUT/manifest.json` is written last. A rerun into the same folder with the
same request continues where the last one stopped (every file it wrote is whole: temporary name,
then rename), or does nothing once the manifest is there; a folder that holds another dataset,
or files that `prepare` did not write, is refused.
"""

import glob
import json
import os

from kerasrwm.training.atomic_files import write_atomically
from kerasrwm.training.atomic_files import write_json_atomically

CLAIM_FILE = ".prepare.json"
MANIFEST_FILE = "manifest.json"


def _read_json(path):
    with open(path) as file:
        return json.load(file)


def check_output(output, request):
    """Checks that `output` may receive `request` (writes nothing); returns its manifest if it is done.

    Args:
        output: the output folder (absent, empty, or written by `prepare`).
        request: what is being prepared, e.g. `{"dataset": "mini-imagenet", "split_lists_sha256": ...}`.

    Returns:
        The finished manifest (a dict) when `output` already holds this request complete, else None.

    Raises:
        ValueError: `output` holds another dataset, the same dataset prepared otherwise, or files
            not written by `prepare`.
    """
    output = str(output)
    if os.path.exists(output) and not os.path.isdir(output):
        raise ValueError(f"`output`={output!r} is a file; give a folder to write the dataset into.")
    claim_path = os.path.join(output, CLAIM_FILE)
    if os.path.isfile(claim_path):
        claimed = _read_json(claim_path)
        if claimed.get("dataset") != request["dataset"]:
            raise ValueError(
                f"`output`={output!r} already holds the dataset {claimed.get('dataset')!r}, not "
                f"{request['dataset']!r}; choose another folder."
            )
        if claimed != request:
            differing = sorted(k for k in set(claimed) | set(request) if claimed.get(k) != request.get(k))
            raise ValueError(
                f"`output`={output!r} holds {request['dataset']!r} prepared with other {differing}; rerun with "
                "the same split lists or choose another folder."
            )
        manifest_path = os.path.join(output, MANIFEST_FILE)
        return _read_json(manifest_path) if os.path.isfile(manifest_path) else None
    if os.path.isdir(output) and any(not name.startswith(".") for name in os.listdir(output)):
        raise ValueError(
            f"`output`={output!r} is not empty and was not written by `kerasrwm prepare`; choose an empty or new folder."
        )
    return None


def claim_output(output, request):
    """Creates `output` if needed and records `request` in it (after `check_output` has accepted it)."""
    os.makedirs(str(output), exist_ok=True)
    claim_path = os.path.join(str(output), CLAIM_FILE)
    if not os.path.isfile(claim_path):
        write_json_atomically(claim_path, request)


def remove_partial_files(folder):
    """Deletes the temporary files an interrupted run left in `folder` (never a finished file)."""
    for path in glob.glob(os.path.join(glob.escape(folder), ".*.tmp*")):
        os.remove(path)


def write_png(path, image):
    """Writes uint8 `image` `[height, width, 3]` as a PNG file at `path`, whole or not at all."""
    from PIL import Image

    write_atomically(path, lambda temporary: Image.fromarray(image).save(temporary, format="PNG"))


def write_manifest(output, manifest):
    """Writes `OUTPUT/manifest.json` (last: its presence means the dataset is complete)."""
    write_json_atomically(os.path.join(str(output), MANIFEST_FILE), manifest)
