"""`tf_ops/device_check.sh` on a machine without a GPU, and its report of a failing harness."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_tools import fake_tool

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPT = REPOSITORY / "tf_ops" / "device_check.sh"
TOOLS = ("bash", "dirname", "mktemp", "tee", "date", "git", "mkdir", "timeout", "readlink", "tail", "cat")

pytestmark = pytest.mark.slow  # runs the script in a subprocess


@pytest.fixture
def bin_dir(tmp_path):
    """A PATH holding only the tools the script uses (so no real nvidia-smi or nvcc), to add fakes to."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in TOOLS:
        (folder / tool).symlink_to(shutil.which(tool))
    return folder


def run_check(bin_dir, out):
    environment = {"PATH": str(bin_dir), "OUT": str(out), "PYTHON": sys.executable, "HOME": os.environ["HOME"]}
    return subprocess.run(["bash", str(SCRIPT)], env=environment, capture_output=True, text=True, timeout=120, cwd="/")


def test_without_nvidia_smi_it_reports_no_gpu_and_exits_cleanly(bin_dir, tmp_path):
    completed = run_check(bin_dir, tmp_path / "out")
    assert completed.returncode == 0, completed.stderr
    assert "no GPU: nvidia-smi is not on PATH" in completed.stdout
    assert "no GPU" in (tmp_path / "out" / "device_check.log").read_text()


def test_with_a_driver_that_does_not_answer_it_reports_no_gpu(bin_dir, tmp_path):
    fake_tool(
        bin_dir, "nvidia-smi", "echo 'NVIDIA-SMI has failed because it could not communicate with the driver'; exit 9"
    )
    completed = run_check(bin_dir, tmp_path / "out")
    assert completed.returncode == 0
    assert "no GPU: nvidia-smi -L found none (NVIDIA-SMI has failed" in completed.stdout


def test_a_gpu_whose_kernels_do_not_build_fails_the_check_with_nvccs_error(bin_dir, tmp_path):
    fake_tool(bin_dir, "nvidia-smi", 'if [ "$1" = "-L" ]; then echo "GPU 0: Fake GPU (UUID: GPU-0)"; fi; echo fake')
    fake_tool(
        bin_dir,
        "nvcc",
        'if [ "$1" = "--version" ]; then echo "Cuda compilation tools, release 12.5, V12.5.1"; exit 0; fi\n'
        "echo 'nvcc fatal   : Unsupported gpu architecture native' >&2; exit 1",
    )
    completed = run_check(bin_dir, tmp_path / "out")
    assert completed.returncode == 1
    log = (tmp_path / "out" / "device_check.log").read_text()
    assert "GPU 0: Fake GPU" in log and "release 12.5" in log
    assert "Unsupported gpu architecture native" in log and "exit status 1" in log
    assert (tmp_path / "out" / "nvidia-smi.txt").is_file()
