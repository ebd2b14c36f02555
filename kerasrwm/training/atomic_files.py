"""Files a run writes appear whole or not at all: written under a temporary name, then renamed."""

import json
import os


def write_atomically(path, write):
    """Calls `write(temporary_path)`, then renames the result onto `path`: a reader sees all or nothing."""
    directory, name = os.path.split(path)
    temporary_path = os.path.join(directory, f".{name}.tmp{os.path.splitext(name)[1]}")
    write(temporary_path)
    os.replace(temporary_path, path)


def write_json(path, data):
    """Writes `data` as indented JSON to `path`, atomically."""

    def write(temporary_path):
        with open(temporary_path, "w") as file:
            json.dump(data, file, indent=2)

    write_atomically(path, write)
