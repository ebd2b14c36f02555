"""`tf_ops/cpu_ab_bench.py`: A/B timing of two versions of the CPU kernels in one process."""

import importlib.util
import math
import shutil
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
KERNELS = REPOSITORY / "kerasrwm" / "ops" / "kernels"
TINY_SHAPE = (2, 7, 3, 8)  # 6 sequences: one partial pack of float32 lanes

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")]  # builds with g++


@pytest.fixture(scope="module")
def ab_bench():
    spec = importlib.util.spec_from_file_location("cpu_ab_bench", REPOSITORY / "tf_ops" / "cpu_ab_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_identical_kernels_give_identical_outputs_and_finite_ratios(ab_bench):
    figures = ab_bench.compare(KERNELS, KERNELS, TINY_SHAPE, repeats=3, warmup=1)
    assert figures["largest_relative_output_difference"] == 0.0
    for part in ("forward", "backward", "total"):
        ratio = figures[f"b_over_a_{part}"]
        assert math.isfinite(ratio) and ratio > 0
    assert figures["a_forward_ms"] > 0 and figures["b_backward_ms"] > 0


def test_a_kernel_that_changes_the_results_fails_the_comparison(ab_bench, tmp_path):
    broken = tmp_path / "kernels"
    shutil.copytree(KERNELS, broken)
    source = (broken / "srwm_cpu.h").read_text()
    revert = "w[index] = w_old - row_key[i] * update_m;"
    assert revert in source
    (broken / "srwm_cpu.h").write_text(source.replace(revert, "w[index] = w_old + row_key[i] * update_m;"))
    arguments = [
        "--baseline-dir",
        str(KERNELS),
        "--candidate-dir",
        str(broken),
        "--repeats",
        "1",
        "--shape",
        ",".join(map(str, TINY_SHAPE)),
    ]
    assert ab_bench.main(arguments) == 1


@pytest.mark.parametrize(
    "arguments, name",
    [
        (["--shape", "2,7,3"], "--shape"),
        (["--repeats", "0"], "--repeats"),
        (["--tolerance", "nan"], "--tolerance"),
        (["--core", "100000"], "--core"),
    ],
)
def test_bad_arguments_are_refused_by_name(ab_bench, capsys, arguments, name):
    with pytest.raises(SystemExit):
        ab_bench.main(arguments)
    assert name in capsys.readouterr().err
