"""Results files of `evaluate`: a full disk while they are written keeps every file whole."""

import json
import os

import pytest

from kerasrwm.training.atomic_files import WriteError
from kerasrwm.training.evaluation import write_results
from tests.training import faults


def sweep(accuracy):
    return {"run": [{"k_test": 1, "accuracy_mean": accuracy, "accuracy_std": 0.1, "runs": 2, "episodes": 4}]}


def test_a_disk_that_fills_up_during_the_results_keeps_each_file_whole(tmp_path, monkeypatch):
    write_results(sweep(0.5), str(tmp_path))
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    assert sorted(before) == ["k_test.png", "results.csv", "results.json"]
    with monkeypatch.context() as patch:
        faults.install(("save:results.csv", 1), faults.raise_disk_full, lambda f: patch.setattr(os, "replace", f))
        with pytest.raises(WriteError, match=f"the disk holding {tmp_path}/results.csv is full"):
            write_results(sweep(0.75), str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(before)
    assert json.loads((tmp_path / "results.json").read_text()) == sweep(0.75)  # written whole before the disk filled
    for name in ("results.csv", "k_test.png"):
        assert (tmp_path / name).read_bytes() == before[name]
