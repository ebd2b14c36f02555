"""oneDNN is switched on before TensorFlow loads, or the user is told once why it is off."""

import os
import subprocess
import sys
import warnings

import pytest

from kerasrwm import runtime


def imported_settings(environment):
    """`(TF_ENABLE_ONEDNN_OPTS, oneDNN on)` in a fresh interpreter that imports kerasrwm first."""
    code = "import os, kerasrwm; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), kerasrwm.runtime.onednn_enabled())"
    env = {key: value for key, value in os.environ.items() if key != runtime.ONEDNN_VARIABLE}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**env, **environment}, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


@pytest.mark.slow
@pytest.mark.skipif(not runtime._is_x86(), reason="oneDNN is chosen for x86 CPUs")
def test_import_turns_onednn_on_unless_the_user_chose():
    assert imported_settings({}) == ["1", "True"]
    assert imported_settings({runtime.ONEDNN_VARIABLE: "0"}) == ["0", "False"]


@pytest.mark.slow
def test_import_registers_the_keras_classes_without_tfds():
    code = (
        "import sys, keras, kerasrwm; "
        "print(keras.saving.get_registered_object('kerasrwm>BootstrappedLearner') is not None, "
        "'tensorflow_datasets' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "False"]


@pytest.mark.slow
def test_the_command_line_loads_tensorflow_only_for_a_command():
    code = "import sys; sys.argv[0] = 'kerasrwm'; import kerasrwm.cli; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False"]


def test_enable_does_nothing_once_tensorflow_is_loaded(monkeypatch):
    import tensorflow  # noqa: F401  (`import kerasrwm` alone does not load it)

    monkeypatch.delenv(runtime.ONEDNN_VARIABLE, raising=False)
    assert not runtime.enable_onednn()
    assert runtime.ONEDNN_VARIABLE not in os.environ


@pytest.mark.parametrize(
    "variable, enabled, x86, warned",
    [(None, False, True, True), ("0", False, True, False), (None, True, True, False), (None, False, False, False)],
)
def test_hint_when_onednn_is_off(monkeypatch, variable, enabled, x86, warned):
    monkeypatch.delenv(runtime.ONEDNN_VARIABLE, raising=False)
    if variable is not None:
        monkeypatch.setenv(runtime.ONEDNN_VARIABLE, variable)
    monkeypatch.setattr(runtime, "onednn_enabled", lambda: enabled)
    monkeypatch.setattr(runtime, "_is_x86", lambda: x86)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runtime.hint_if_onednn_off()
    assert [str(w.message).startswith("TensorFlow's oneDNN kernels are off") for w in caught] == (
        [True] if warned else []
    )


@pytest.mark.slow
def test_import_prints_nothing_of_tensorflows_start_up():
    env = {key: value for key, value in os.environ.items() if key != runtime.LOG_LEVEL_VARIABLE}
    result = subprocess.run([sys.executable, "-c", "import kerasrwm"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout == ""


@pytest.mark.parametrize("backend", ["jax", "torch", "numpy"])
def test_a_non_tensorflow_keras_backend_is_refused_before_keras_loads(backend):
    result = subprocess.run(
        [sys.executable, "-c", "import kerasrwm"],
        env={**os.environ, "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"ImportError: kerasrwm needs Keras's TensorFlow backend; Keras is set to use {backend!r}. Set the environment "
        "variable KERAS_BACKEND=tensorflow before importing keras (or kerasrwm)."
    )
    assert "Traceback" in result.stderr and "keras/src" not in result.stderr  # refused before Keras imports it


@pytest.mark.parametrize(
    "interpreter_arguments, module",
    [
        (["python", "-m", "kerasrwm", "train"], "kerasrwm"),
        (["python", "-W", "ignore", "-X", "dev", "-m", "kerasrwm.cli", "--help"], "kerasrwm.cli"),
        (["python", "-mpytest", "-q"], "pytest"),
        (["python", "-u", "script.py", "-m", "kerasrwm"], None),
        (["python", "-c", "import kerasrwm", "-m", "kerasrwm"], None),
        (["python"], None),
    ],
)
def test_module_run_as_main_reads_the_interpreter_arguments(interpreter_arguments, module):
    assert runtime.module_run_as_main(interpreter_arguments) == module


@pytest.mark.parametrize(
    "argv, interpreter_arguments, cli",
    [
        (["/usr/bin/kerasrwm", "train"], ["python", "/usr/bin/kerasrwm", "train"], True),
        (["-m"], ["python", "-m", "kerasrwm", "train"], True),
        (["-m"], ["python", "-m", "kerasrwm.cli", "train"], True),
        (["-m"], ["python", "-m", "pytest", "-q"], False),  # another package's `python -m` importing kerasrwm
        (["-m"], ["python", "-m", "kerasrwmx"], False),
    ],
)
def test_running_cli_is_the_console_script_or_python_m_kerasrwm_only(monkeypatch, argv, interpreter_arguments, cli):
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "orig_argv", interpreter_arguments)
    assert runtime.running_cli() is cli


@pytest.mark.slow
def test_python_m_kerasrwm_is_the_command_line():
    result = subprocess.run([sys.executable, "-m", "kerasrwm", "--help"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("usage: kerasrwm") and "train" in result.stdout
