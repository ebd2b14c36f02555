"""v2's study scripts (`examples/bootstrap_study_v2/*.py`) as modules, so that v3 reuses them as they are."""

import importlib.util
import pathlib

V2_DIR = pathlib.Path(__file__).resolve().parents[1] / "bootstrap_study_v2"


def load(name):
    """The module of `examples/bootstrap_study_v2/<name>.py`, e.g. `load("learning_curves")`."""
    spec = importlib.util.spec_from_file_location(f"bootstrap_study_v2_{name}", V2_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
