import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_runtest_setup(item):
    """`@pytest.mark.requires_fused`: the test needs the fused op library.

    It skips only when `KERASRWM_DISABLE_FUSED` turns the op off on purpose; a library that does
    not build or load fails the test with the reason, so a broken build is never a silent skip.
    """
    if item.get_closest_marker("requires_fused") is None:
        return
    from kerasrwm.ops import fused_srwm

    if fused_srwm.is_available():
        return
    reason = fused_srwm.unavailable_reason()
    if fused_srwm._disabled():
        pytest.skip(reason)
    pytest.fail(f"the fused op library is unavailable: {reason}", pytrace=False)
