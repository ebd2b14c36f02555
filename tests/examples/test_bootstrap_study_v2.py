"""The study's paired-difference script against differences worked out by hand."""

import importlib.util
import json
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).parents[2] / "examples" / "bootstrap_study_v2" / "paired_differences.py"


@pytest.fixture(scope="module")
def paired_differences():
    spec = importlib.util.spec_from_file_location("paired_differences", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_evaluation(study_dir, accuracies):
    """`results.json` and `settings.json` as `kerasrwm evaluate` writes them, from `{arm: {seed: [acc]}}`."""
    results, settings = {}, {}
    for arm, seeds in accuracies.items():
        runs = [str(study_dir / arm / f"seed{seed}") for seed in seeds]
        settings[arm] = {"runs": runs, "rows": []}
        for run, values in zip(runs, seeds.values()):
            results[run] = [
                {"k_test": k, "accuracy_mean": value, "accuracy_std": 0.0, "runs": 1, "episodes": 8}
                for k, value in zip((1, 10, 15), values)
            ]
    (study_dir / "results.json").write_text(json.dumps(results))
    (study_dir / "settings.json").write_text(json.dumps(settings))


def test_paired_differences_and_acceleration(paired_differences, tmp_path):
    write_evaluation(
        tmp_path,
        {
            "no_bootstrap": {0: [0.50, 0.80, 0.90], 1: [0.40, 0.70, 0.75], 2: [0.60, 0.85, 0.95]},
            "bootstrap": {2: [0.50, 0.95, 0.96], 0: [0.55, 0.90, 0.91], 1: [0.40, 0.60, 0.65]},
        },
    )
    paired_differences.main(str(tmp_path))
    paired = json.loads((tmp_path / "paired.json").read_text())
    at_10 = paired["bootstrap_minus_no_bootstrap"]["10"]
    assert at_10["per_seed"] == pytest.approx([10.0, -10.0, 10.0])  # seeds in order 0, 1, 2
    assert at_10["mean"] == pytest.approx(3.33)
    assert at_10["std"] == pytest.approx(11.55)  # sample std (ddof 1) of 10, -10, 10
    assert at_10["t"] == pytest.approx(0.5)
    assert (at_10["seeds_higher"], at_10["seeds"]) == (2, 3)
    acceleration = paired["bootstrap_k10_minus_no_bootstrap_k15"]
    assert acceleration["per_seed"] == pytest.approx([0.0, -15.0, 0.0])
    assert acceleration["seeds_higher"] == 0


def test_a_run_not_named_by_its_seed_is_refused(paired_differences, tmp_path):
    write_evaluation(tmp_path, {"no_bootstrap": {0: [0.5, 0.5, 0.5]}, "bootstrap": {0: [0.5, 0.5, 0.5]}})
    settings = json.loads((tmp_path / "settings.json").read_text())
    results = json.loads((tmp_path / "results.json").read_text())
    renamed = str(tmp_path / "bootstrap" / "best")
    results[renamed] = results.pop(settings["bootstrap"]["runs"][0])
    settings["bootstrap"]["runs"] = [renamed]
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    (tmp_path / "results.json").write_text(json.dumps(results))
    with pytest.raises(ValueError, match="seed<S>"):
        paired_differences.main(str(tmp_path))


def test_a_missing_arm_is_named(paired_differences, tmp_path):
    write_evaluation(tmp_path, {"no_bootstrap": {0: [0.5, 0.5, 0.5]}})
    with pytest.raises(ValueError, match=r"no arm \['bootstrap'\]"):
        paired_differences.main(str(tmp_path))


def refuse_non_finite(constant):
    raise ValueError(f"paired.json holds {constant}, which strict JSON has not")


def test_one_seed_has_no_spread_and_other_arms_are_left_out(paired_differences, tmp_path):
    write_evaluation(
        tmp_path,
        {
            "no_bootstrap": {0: [0.50, 0.80, 0.90]},
            "bootstrap": {0: [0.45, 0.85, 0.80]},
            "bootstrap_reference": {0: [0.10, 0.10, 0.10]},
        },
    )
    paired_differences.main(str(tmp_path))
    paired = json.loads((tmp_path / "paired.json").read_text(), parse_constant=refuse_non_finite)
    at_10 = paired["bootstrap_minus_no_bootstrap"]["10"]
    assert at_10["per_seed"] == pytest.approx([5.0])
    assert (at_10["mean"], at_10["std"], at_10["t"]) == (pytest.approx(5.0), None, None)
    assert set(paired["accuracy_percent"]) == {"no_bootstrap", "bootstrap"}
