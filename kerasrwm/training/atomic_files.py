"""Files written whole or not at all: write to a temporary name, then rename into place."""

import json
import os


def write_atomically(path, write):
    """Calls `write(temporary_path)`, then renames the result onto `path`: a reader sees all or nothing.

    The temporary name is hidden (`.NAME.tmpEXT`, in the same directory, so the rename is atomic)
    and keeps the extension of `path`, which some writers (Keras `save`) check. Until the rename,
    the previous file at `path`, if any, is untouched.
    """
    directory, name = os.path.split(path)
    temporary_path = os.path.join(directory, f".{name}.tmp{os.path.splitext(name)[1]}")
    write(temporary_path)
    os.replace(temporary_path, path)


def write_json_atomically(path, value):
    """Writes `value` as indented JSON to `path`, whole or not at all."""

    def write(temporary_path):
        with open(temporary_path, "w") as file:
            json.dump(value, file, indent=2)

    write_atomically(path, write)
