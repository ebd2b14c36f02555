"""The README's Python example runs as it is written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_example():
    """The first ```python block of the README's "Python API" section."""
    section = README.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


@pytest.mark.slow
def test_python_example_runs_without_a_warning(tmp_path):
    result = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-W", "error::RuntimeWarning", "-c", python_example()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert re.findall(r"K_test=(\d+): \d\.\d{3}", result.stdout) == ["1", "5", "10"]
    for written in ("best.keras", "bootstrap.keras", "exported/saved_model.pb", "logs"):
        assert (tmp_path / written).exists(), written
