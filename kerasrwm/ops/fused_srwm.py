"""Fused SRWM custom op (C++/CUDA): loader, gradient registration and wrapper.

Placeholder until the op library lands: reports itself unavailable.
"""


def is_available():
    return False


def unavailable_reason():
    return "the fused op is not part of this version of kerasrwm."


def srwm_fused(x, w_y, w_q, w_k, w_b):
    raise RuntimeError(unavailable_reason())
